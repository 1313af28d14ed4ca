@_spi(Testing) import CofferStore
import CofferCrypto
import CofferKeys
import CofferTestSupport
import Foundation
import Logging
import Testing

/// A counting proxy (scripts/testing/kms_counting_proxy.py) in front of the local KMS
/// endpoint: counts KMS calls outside Coffer and can simulate an outage.
final class KMSProxy: @unchecked Sendable {
    // Touched only from the test's own task.
    let process = Process()
    let port: Int
    let folder: URL

    init() async throws {
        folder = try TestEnvironment.temporaryDirectory()
        let portFile = folder.appendingPathComponent("port")
        process.executableURL = URL(fileURLWithPath: try TestEnvironment.python())
        process.arguments = [TestEnvironment.repositoryRoot.appendingPathComponent("scripts/testing/kms_counting_proxy.py").path,
                             try TestEnvironment.kmsEndpoint(), portFile.path]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var port: Int?
        for _ in 0..<100 {
            if let text = try? String(contentsOf: portFile, encoding: .utf8), let value = Int(text) { port = value; break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else { throw TestFailure("the KMS proxy did not start") }
        self.port = port
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    func counts() async throws -> [String: Int] {
        let result = try await ProcessRunner.run("/usr/bin/env", ["curl", "-sS", "\(endpoint)/__counts"], inheritEnvironment: true)
        return (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Int] ?? [:]
    }

    func set(down: Bool) async throws { try await control(down ? "__down" : "__up") }

    /// From now on every forwarded call is answered with AccessDeniedException.
    func deny() async throws { try await control("__deny") }

    private func control(_ path: String) async throws {
        _ = try await ProcessRunner.run("/usr/bin/env", ["curl", "-sS", "-X", "POST", "\(endpoint)/\(path)"], inheritEnvironment: true)
    }

    /// SIGKILL: the test process runs with SIGTERM blocked, and children inherit the mask.
    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: folder)
    }
}

@Suite struct KMSModeTests {
    struct Keys {
        let encryption: String
        let signing: String
    }

    static func createKeys(signingSpec: String = "RSA_4096") async throws -> Keys {
        let kms = try KMSClientFactory.client()
        let encryption = try await kms.createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "coffer kek")
        let signing = try await kms.createKey(usage: "SIGN_VERIFY", spec: signingSpec, description: "coffer jwt")
        return Keys(encryption: encryption.arn, signing: signing.arn)
    }

    static func environment(_ keys: Keys, endpoint: String) -> [String: String] {
        [
            "ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": keys.encryption, "ENCRYPTION_KMS_SIGNING_KEY_ID": keys.signing,
            "ENCRYPTION_RSA_PRIVATE_KEY": "", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_KMS": endpoint,
        ]
    }

    @Test func migrateWrapsTheKeyWithKMSUnderTheDocumentedContext() async throws {
        try await withCLI { cli in
            let keys = try await Self.createKeys()
            let env = Self.environment(keys, endpoint: try TestEnvironment.kmsEndpoint())
            // Eight processes at once on the empty database: one KEK, the others verify it.
            var merged = cli.environment
            merged.merge(env) { $1 }
            let binary = try TestEnvironment.binary()
            let results = try await withThrowingTaskGroup(of: ProcessResult.self) { [merged] group in
                for _ in 0..<8 { group.addTask { try await ProcessRunner.run(binary, ["migrate"], environment: merged) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for result in results { #expect(result.status == 0, "\(result.stderr)") }
            #expect(results.filter { $0.stdout.contains("keys: created") }.count == 1)
            #expect(results.filter { $0.stdout.contains("keys: verified") }.count == 7)
            #expect(try await cli.run(["migrate"], overrides: env).stdout.contains("keys: verified"))
            let kekCount = try await cli.database.withConnection { connection in
                try await connection.query("SELECT count(*) FROM key_encryption_keys", logger: Logger(label: "t"))
                    .collect().first!.decode(Int.self)
            }
            #expect(kekCount == 1)
            let (rootType, rootKeyID, wrapped) = try await cli.database.withConnection { connection in
                try await connection.query(
                    "SELECT root_type, root_key_id, encode(wrapped_key, 'base64') FROM key_encryption_keys", logger: Logger(label: "t")
                ).collect().first!.decode((String, String, String).self)
            }
            #expect(rootType == "kms")
            #expect(rootKeyID == keys.encryption)
            let python = try await TestEnvironment.boto3("""
                blob = base64.b64decode(sys.argv[1])
                out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"coffer:purpose": "key-encryption-key"})
                print(len(out["Plaintext"]), out["KeyId"])
                """, arguments: [wrapped.replacingOccurrences(of: "\n", with: "")])
            #expect(python.stdout == "32 \(keys.encryption)\n", "\(python.stderr)")

            // Another KMS key is the wrong root: exit 3, nothing written.
            let before = try await cli.dump()
            let other = try await Self.createKeys(signingSpec: "RSA_2048")
            let wrong = try await cli.run(["migrate"], overrides: Self.environment(other, endpoint: try TestEnvironment.kmsEndpoint()))
            #expect(wrong.status == 3, "\(wrong.stderr)")
            #expect(try await cli.dump() == before)
        }
    }

    @Test func badKeysExitTwoAndAnUnreachableKMSExitsFour() async throws {
        try await withCLI { cli in
            let keys = try await Self.createKeys(signingSpec: "RSA_2048")
            let endpoint = try TestEnvironment.kmsEndpoint()
            let cases: [(String, Keys, String)] = [
                ("signing key for encryption", Keys(encryption: keys.signing, signing: keys.signing), "SIGN_VERIFY"),
                ("encryption key for signing", Keys(encryption: keys.encryption, signing: keys.encryption), "ENCRYPT_DECRYPT"),
                ("missing key", Keys(encryption: "alias/coffer-missing", signing: keys.signing), "NotFoundException"),
            ]
            for (name, keys, expected) in cases {
                let result = try await cli.run(["migrate"], overrides: Self.environment(keys, endpoint: endpoint))
                #expect(result.status == 2, "\(name): \(result.stderr)")
                #expect(result.stderr.contains(expected), "\(name): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(name)")
                #expect(!result.stderr.contains("testing"), "\(name)")
            }
            // A disabled key.
            let disabled = try await KMSClientFactory.client().createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "off")
            #expect(try await TestEnvironment.boto3("kms.disable_key(KeyId=sys.argv[1])", arguments: [disabled.keyID]).status == 0)
            let off = try await cli.run(["migrate"], overrides: Self.environment(Keys(encryption: disabled.arn, signing: keys.signing), endpoint: endpoint))
            #expect(off.status == 2, "\(off.stderr)")
            #expect(off.stderr.contains(disabled.arn) && off.stderr.contains("Disabled"), "\(off.stderr)")
            #expect(off.stderr.split(separator: "\n").count == 1)

            // Access denied by IAM: the line names the action, the key and the permission to grant.
            let proxy = try await KMSProxy()
            defer { proxy.stop() }
            try await proxy.deny()
            let denied = try await cli.run(["migrate"], overrides: Self.environment(keys, endpoint: proxy.endpoint))
            #expect(denied.status == 2, "\(denied.stderr)")
            #expect(denied.stderr.contains("AccessDenied") && denied.stderr.contains("kms:DescribeKey"), "\(denied.stderr)")
            #expect(denied.stderr.contains(keys.encryption) || denied.stderr.contains(keys.signing), "\(denied.stderr)")
            #expect(denied.stderr.split(separator: "\n").count == 1)
            #expect(!denied.stderr.contains("testing"))
            await #expect(try proxy.counts()["DescribeKey"] == 1, "AccessDenied is not retried")

            let unreachable = try await cli.run(["serve"], overrides: Self.environment(keys, endpoint: "http://127.0.0.1:1"))
            // KMS unreachable has its own exit code; 4 is the database's.
            #expect(unreachable.status == 5, "\(unreachable.stderr)")
            #expect(unreachable.stderr.split(separator: "\n").count == 1)
        }
    }

    @Test func serveCallsKMSOnlyToStartAndToSignAndSurvivesAnOutage() async throws {
        try await withCLI { cli in
            let keys = try await Self.createKeys()
            #expect(try await cli.run(["migrate"], overrides: Self.environment(keys, endpoint: try TestEnvironment.kmsEndpoint())).status == 0)
            // `api-keys` loads the keys (each key row carries a code), so it needs the KMS root too.
            let kmsRoot = Self.environment(keys, endpoint: try TestEnvironment.kmsEndpoint())
            let key = try await cli.run(["api-keys", "create", "--name", "runner", "--role", "worker", "--format", "json"], overrides: kmsRoot)
            let writerKey = try await cli.run(["api-keys", "create", "--name", "writer", "--role", "write", "--format", "json"], overrides: kmsRoot)
            func credentials(_ result: ProcessResult) -> [String: String] {
                (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: String] ?? [:]
            }
            let worker = credentials(key), writer = credentials(writerKey)

            let proxy = try await KMSProxy()
            defer { proxy.stop() }
            let server = try ServeProcess(cli: cli, overrides: Self.environment(keys, endpoint: proxy.endpoint))
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            await #expect(try proxy.counts()["Decrypt"] == 1)

            func token(_ key: [String: String]) async throws -> (Int, String?) {
                let reply = try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": key["id"]!, "api_key_secret": key["secret"]!])
                return (reply.status, reply.body["token"] as? String)
            }
            let writerToken = try #require(try await token(writer).1)
            #expect(try await server.request("POST", "/api/v1/stacks", token: writerToken, json: ["id": "app", "name": "App"]).status == 201)
            #expect(try await server.request("PUT", "/api/v1/stacks/app/config/SECRET", token: writerToken,
                                       json: ["type": "ENVIRONMENT_VARIABLE", "value": "kms-protected", "write_only": true]).status == 201)

            // ~1,000 authenticated requests with 10 tokens issued.
            var tokens: [String] = []
            for _ in 0..<9 { tokens.append(try #require(try await token(worker).1)) }
            let load = try await ProcessRunner.run(try TestEnvironment.python(), ["-c", """
                import http.client, sys
                port, tokens = int(sys.argv[1]), sys.argv[2].split(",")
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                ok = 0
                for i in range(990):
                    connection.request("GET", "/api/v1/stacks/app/runtime-config", headers={"Authorization": "Bearer " + tokens[i % len(tokens)]})
                    response = connection.getresponse()
                    response.read()
                    ok += response.status == 200
                print(ok)
                """, "\(server.port)", tokens.joined(separator: ",")])
            #expect(load.stdout == "990\n", "\(load.stderr)")
            let counted = try await proxy.counts()
            #expect(counted["Decrypt"] == 1)
            #expect(counted["Sign"] == 10)
            #expect((counted["Sign"] ?? 0) <= 12)
            #expect(Set(counted.keys).isSubset(of: ["DescribeKey", "GetPublicKey", "Decrypt", "Sign"]), "\(counted)")
            let metrics = try await server.request("GET", "/metrics").raw
            #expect(metrics.contains(#"coffer_kms_requests_total{action="Decrypt",outcome="ok"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"coffer_kms_requests_total{action="Sign",outcome="ok"} 10"#), "\(metrics)")

            // KMS goes away: values keep working from memory, tokens cannot be issued.
            try await proxy.set(down: true)
            #expect(try await server.request("PUT", "/api/v1/stacks/app/config/OTHER", token: writerToken,
                                       json: ["type": "ENVIRONMENT_VARIABLE", "value": "still-works"]).status == 201)
            let runtime = try await server.request("GET", "/api/v1/stacks/app/runtime-config", token: tokens[0])
            #expect(runtime.status == 200)
            #expect((runtime.body["items"] as? [[String: Any]])?.count == 2)
            let refused = try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": worker["id"]!, "api_key_secret": worker["secret"]!])
            #expect(refused.status == 503)
            #expect((refused.body["error"] as? [String: Any])?["code"] as? String == "unavailable")
            // And back: issuance recovers without a restart.
            try await proxy.set(down: false)
            #expect(try await token(worker).0 == 200)

            // A Coffer token verifies with PyJWT against the JWKS of the KMS signing key.
            let jwks = try await server.request("GET", "/.well-known/jwks.json").raw
            let pyjwt = try await ProcessRunner.run(try TestEnvironment.python(), ["-c", """
                import json, sys, jwt
                key = json.loads(sys.argv[1])["keys"][0]
                print(jwt.decode(sys.argv[2], jwt.PyJWK(key).key, algorithms=["RS256"], audience="coffer-api")["role"])
                """, jwks, tokens[0]])
            #expect(pyjwt.stdout == "worker\n", "\(pyjwt.stderr)")
            // The README's KMS recovery walk-through (aws kms decrypt, then Python) opens every value.
            let recovered = try await Recovery.runWalkthrough(
                databaseURL: cli.database.url, key: nil, shellBlock: "kms-shell",
                environment: ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                              "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": try TestEnvironment.kmsEndpoint()]
            )
            #expect(Set(recovered.map { "\($0.configID)=\($0.plaintext)" }) == ["SECRET=kms-protected", "OTHER=still-works"])

            server.stop()
            #expect(!server.log.contains("kms-protected"))
            #expect(!server.log.contains(tokens[0]))
        }
    }
}

enum KMSClientFactory {
    static func client() throws -> KMSClient {
        let credentials = AWSCredentialProvider(source: .environment(AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")), logger: Logger(label: "t"))
        return KMSClient(configuration: .init(region: "us-east-1", endpoint: try TestEnvironment.kmsEndpoint()), credentials: credentials, logger: Logger(label: "t"))
    }
}
