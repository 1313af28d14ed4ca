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
    public static func boto3(_ code: String, arguments: [String] = []) throws -> ProcessResult {
        let prelude = """
            import base64, json, sys, boto3
            kms = boto3.client("kms", region_name="us-east-1", endpoint_url=\(String(reflecting: try kmsEndpoint())),
                               aws_access_key_id="testing", aws_secret_access_key="testing")

            """
        return try ProcessRunner.run(try python(), ["-c", prelude + code] + arguments)
    }
}
