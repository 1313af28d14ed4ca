import Foundation

/// What `scripts/test` provides to the integration tests through the environment.
/// A test that needs a service fails with instructions when it is missing; it never
/// passes silently.
public enum TestEnvironment {
    public struct Missing: Error, CustomStringConvertible {
        public let variable: String
        public var description: String {
            "\(variable) is not set: integration tests need the services that scripts/test starts; run `scripts/test` (optionally `scripts/test --filter NAME`)"
        }
    }

    public static func require(_ variable: String) throws -> String {
        guard let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty else { throw Missing(variable: variable) }
        return value
    }

    /// An admin URL of the test PostgreSQL server.
    public static func databaseURL() throws -> String { try require("COFFER_TEST_DATABASE_URL") }
    /// The built `coffer` executable.
    public static func binary() throws -> String { try require("COFFER_BINARY") }
    /// The test venv's Python, with `cryptography` and `PyJWT`.
    public static func python() throws -> String { try require("COFFER_TEST_PYTHON") }
    /// Debian's PostgreSQL binaries (pg_dump).
    public static func pgBin() throws -> String { try require("COFFER_TEST_PG_BIN") }

    /// The repository's root folder.
    public static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// A new temporary folder, removed by the caller.
    public static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("coffer-test-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

extension TestEnvironment {
    /// The local KMS endpoint (moto) that scripts/test starts.
    public static func kmsEndpoint() throws -> String { try require("COFFER_TEST_KMS_ENDPOINT") }

    /// A loopback TCP port nobody listens on now: the kernel picks it for a socket bound to
    /// port 0 (a random pick in the ephemeral range can collide with outgoing connections).
    public static func freePort() throws -> Int {
        #if canImport(Glibc)
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let descriptor = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard descriptor >= 0 else { throw CocoaError(.fileNoSuchFile) }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw CocoaError(.fileNoSuchFile) }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The CA that signed the test PostgreSQL server's certificate (localhost, 127.0.0.1).
    public static func postgresCA() throws -> String { try require("COFFER_TEST_PG_CA") }

    /// Environment for AWS clients talking to the local KMS endpoint.
    public static func awsEnvironment() throws -> [String: String] {
        [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_KMS": try kmsEndpoint(), "AWS_ENDPOINT_URL": try kmsEndpoint(),
        ]
    }

    /// Runs Python code in the test venv (with boto3) against the local KMS endpoint.
    public static func boto3(_ code: String, arguments: [String] = []) async throws -> ProcessResult {
        let prelude = """
            import base64, json, sys, boto3
            kms = boto3.client("kms", region_name="us-east-1", endpoint_url=\(String(reflecting: try kmsEndpoint())),
                               aws_access_key_id="testing", aws_secret_access_key="testing")

            """
        return try await ProcessRunner.run(try python(), ["-c", prelude + code] + arguments)
    }
}
