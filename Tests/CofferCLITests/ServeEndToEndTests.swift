@_spi(Testing) import CofferStore
import CofferCrypto
import CofferTestSupport
import Foundation
import Testing

/// The whole path a user takes: migrate, create keys, serve, store and read secrets over
/// HTTP; then what an auditor or an operator in trouble does with the stored bytes.
@Suite struct ServeEndToEndTests {
    @Test func storedValuesAreSealedRecoverableAndTokensInteroperate() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            func apiKey(_ role: String) async throws -> (String, String) {
                let result = try await cli.run(["api-keys", "create", "--name", role, "--role", role, "--format", "json"])
                let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: String] ?? [:]
                return (object["id"] ?? "", object["secret"] ?? "")
            }
            let (adminID, adminSecret) = try await apiKey("admin")
            let (workerID, workerSecret) = try await apiKey("worker")
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            #expect(try await server.request("GET", "/readyz").status == 200)

            let token = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": adminID, "api_key_secret": adminSecret]).body["token"] as? String)
            let workerToken = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": workerID, "api_key_secret": workerSecret]).body["token"] as? String)
            #expect(try await server.request("POST", "/api/v1/stacks", token: token, json: ["id": "app", "name": "App"]).status == 201)
            #expect(try await server.request("POST", "/api/v1/contexts", token: token, json: ["id": "shared", "name": "Shared"]).status == 201)

            let canary = "canary-\(UUID().uuidString)"
            let values: [(owner: String, id: String, type: String, plaintext: String, writeOnly: Bool)] = [
                ("stacks/app", "DB_PASSWORD", "ENVIRONMENT_VARIABLE", "\(canary)-password", true),
                ("stacks/app", "LOG_LEVEL", "ENVIRONMENT_VARIABLE", "\(canary)-plain", false),
                ("stacks/app", "certs/ca.pem", "FILE_MOUNT", "\(canary)-file\nsecond line", true),
                ("contexts/shared", "API_TOKEN", "ENVIRONMENT_VARIABLE", "\(canary)-context", true),
            ]
            for value in values {
                let body = value.type == "FILE_MOUNT" ? Data(value.plaintext.utf8).base64EncodedString() : value.plaintext
                let path = value.id.replacingOccurrences(of: "/", with: "%2F")
                let put = try await server.request("PUT", "/api/v1/\(value.owner)/config/\(path)", token: token,
                                             json: ["type": value.type, "value": body, "write_only": value.writeOnly])
                #expect(put.status == 201, "\(put.raw)")
            }
            #expect(try await server.request("PUT", "/api/v1/stacks/app/contexts/shared", token: token, json: ["priority": 0]).status == 200)

            let runtime = try await server.request("GET", "/api/v1/stacks/app/runtime-config", token: workerToken)
            #expect(runtime.status == 200)
            let items = runtime.body["items"] as? [[String: Any]] ?? []
            #expect(items.first { $0["id"] as? String == "DB_PASSWORD" }?["value"] as? String == "\(canary)-password")
            #expect(items.first { $0["id"] as? String == "API_TOKEN" }?["source"] as? String == "context:shared")

            // 1. No plaintext in a dump of the database, in text or hex.
            let dump = try await cli.dump()
            #expect(!dump.isEmpty)
            for value in values {
                #expect(!dump.contains(value.plaintext), "plaintext of \(value.id) in pg_dump")
                #expect(!dump.contains(Hex.encode(Array(value.plaintext.utf8)).prefix(40)), "hex plaintext of \(value.id) in pg_dump")
            }
            #expect(!dump.contains(canary))

            // 2. Tokens verify with a third-party JWT library, using only the published JWKS.
            let jwks = try await server.request("GET", "/.well-known/jwks.json").raw
            let pyjwt = try await ProcessRunner.run(try TestEnvironment.python(), ["-c", """
                import json, sys, jwt
                jwks = json.loads(sys.argv[1])
                header = jwt.get_unverified_header(sys.argv[2])
                key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
                claims = jwt.decode(sys.argv[2], jwt.PyJWK(key).key, algorithms=["RS256"], audience="coffer-api", issuer="coffer")
                print(claims["role"], claims["space"], claims["sub"])
                """, jwks, token])
            #expect(pyjwt.status == 0, "\(pyjwt.stderr)")
            #expect(pyjwt.stdout == "admin root \(adminID)\n")

            // 3. The README's recovery walk-through decrypts every value.
            let recovered = try await Recovery.runWalkthrough(databaseURL: cli.database.url, key: cli.key)
            for value in values {
                #expect(recovered.contains { $0.configID == value.id && $0.plaintext == value.plaintext }, "\(value.id) not recovered")
            }
            #expect(recovered.count == values.count)

            // 4. The audit trail lists every action of this session, and no value.
            let audit = try await server.request("GET", "/api/v1/audit-events?limit=500", token: token)
            #expect(audit.status == 200)
            let actions = ((audit.body["items"] as? [[String: Any]]) ?? []).map { "\($0["action"] ?? "") \($0["resource"] ?? "") \($0["actor"] ?? "")" }
            for expected in [
                "token.issue api_key:\(adminID) \(adminID)", "token.issue api_key:\(workerID) \(workerID)",
                "stack.create stack:app \(adminID)", "context.create context:shared \(adminID)",
                "config.put stack:app/config/DB_PASSWORD \(adminID)", "config.put stack:app/config/certs/ca.pem \(adminID)",
                "config.put context:shared/config/API_TOKEN \(adminID)", "attachment.put stack:app/contexts/shared \(adminID)",
                "runtime_config.read stack:app/runtime-config \(workerID)", "api_key.create api_key:\(adminID) cli",
            ] {
                #expect(actions.contains(expected), "audit trail lacks `\(expected)`")
            }
            #expect(!audit.raw.contains(canary))

            // 5. The server's log holds no secret value, key or token.
            server.stop()
            let log = server.log
            #expect(log.contains("\"message\":\"request\""))
            for secret in [canary, adminSecret, workerSecret, token, workerToken, String(TestKeys.environmentValue(cli.key).prefix(60))] {
                let logged = log.contains(secret)  // a Bool: a failure prints no secret
                #expect(!logged, "a secret reached the server log")
            }
        }
    }

    @Test func openSSLAgreesWithTheStoredKeyAndFingerprint() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let folder = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: folder) }
            try cli.key.pkcs8PEM.write(to: folder.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
            let fingerprint = try await ProcessRunner.shell(
                "cd '\(folder.path)' && openssl pkey -in key.pem -pubout -outform DER | openssl dgst -sha256 -r | cut -d' ' -f1"
            )
            let stored = try await cli.database.withConnection { connection in
                try await connection.query("SELECT root_key_id FROM key_encryption_keys", logger: .init(label: "t")).collect().first!.decode(String.self)
            }
            #expect(fingerprint.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == stored)
        }
    }
}

/// Runs the two code blocks of the README's recovery walk-through, as an operator would.
enum Recovery {
    struct Value: Equatable {
        let ownerID: String
        let configID: String
        let plaintext: String
    }

    static func block(_ name: String, in readme: String) throws -> String {
        guard let start = readme.range(of: "<!-- recovery-walkthrough:\(name) -->"),
              let end = readme.range(of: "<!-- /recovery-walkthrough:\(name) -->", range: start.upperBound..<readme.endIndex)
        else { throw TestFailure("README has no recovery-walkthrough:\(name) block") }
        let lines = readme[start.upperBound..<end.lowerBound].split(separator: "\n", omittingEmptySubsequences: false)
        return lines.filter { !$0.hasPrefix("```") }.joined(separator: "\n")
    }

    /// - Parameters:
    ///   - shellBlock: `shell` (RSA root, needs `key`) or `kms-shell` (KMS root, needs AWS variables).
    static func runWalkthrough(databaseURL: String, key: RSAPrivateKey?, shellBlock: String = "shell", environment: [String: String] = [:]) async throws -> [Value] {
        let readme = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let folder = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try key?.pkcs8PEM.write(to: folder.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        try block(shellBlock, in: readme).write(to: folder.appendingPathComponent("recover.sh"), atomically: true, encoding: .utf8)
        try block("python", in: readme).write(to: folder.appendingPathComponent("recover.py"), atomically: true, encoding: .utf8)
        let pgBin = try TestEnvironment.pgBin()
        let venvBin = URL(fileURLWithPath: try TestEnvironment.python()).deletingLastPathComponent().path
        var env = environment
        env["DATABASE_URL"] = databaseURL
        let shell = try await ProcessRunner.shell(
            "cd '\(folder.path)' && PATH='\(pgBin)':'\(venvBin)':\"$PATH\" bash -euo pipefail recover.sh",
            environment: env
        )
        guard shell.status == 0 else { throw TestFailure("recovery shell block failed: \(shell.stderr)") }
        let python = try await ProcessRunner.shell("cd '\(folder.path)' && '\(try TestEnvironment.python())' recover.py")
        guard python.status == 0 else { throw TestFailure("recovery python block failed: \(python.stderr)") }
        // Each value prints as "owner config plaintext" and a file may span lines: split on
        // owner UUIDs at line starts.
        var values: [Value] = []
        var current: (String, String, [String])?
        for line in python.stdout.split(separator: "\n", omittingEmptySubsequences: false) {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
            if parts.count >= 2, UUID(uuidString: String(parts[0])) != nil {
                if let (owner, config, text) = current { values.append(Value(ownerID: owner, configID: config, plaintext: text.joined(separator: "\n"))) }
                current = (String(parts[0]), String(parts[1]), [parts.count > 2 ? String(parts[2]) : ""])
            } else if current != nil {
                current!.2.append(String(line))
            }
        }
        if let (owner, config, text) = current {
            var lines = text
            if lines.last == "" { lines.removeLast() }
            values.append(Value(ownerID: owner, configID: config, plaintext: lines.joined(separator: "\n")))
        }
        return values
    }
}
