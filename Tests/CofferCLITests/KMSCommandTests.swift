import CofferTestSupport
import Foundation
import Testing

/// `coffer kms encrypt | decrypt` against a running `coffer serve`, as a script uses it.
@Suite struct KMSCommandTests {
    @Test func encryptAndDecryptThroughStandardInputAndOutput() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "ops", "--role", "admin", "--format", "json"]))
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "runner", "--role", "worker", "--format", "json"]))
            let reader = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "auditor", "--role", "read", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let adminToken = try await server.token(for: admin)
            let workerToken = try await server.token(for: worker)
            #expect(try await server.request("POST", "/api/v1/kms/keys", token: adminToken, json: ["name": "app-data"]).status == 201)

            func kms(_ arguments: [String], token: String?, stdin: Data) async throws -> ProcessResult {
                var environment = ["COFFER_URL": server.baseURL]
                if let token { environment["COFFER_TOKEN"] = token }
                return try await ProcessRunner.run(try TestEnvironment.binary(), ["kms"] + arguments, environment: environment, stdin: stdin)
            }
            let secret = "db-password-\(UUID().uuidString)\n\u{1}binary\u{0}tail"
            let encrypted = try await kms(["encrypt", "--key", "app-data", "--context", "service=billing"], token: workerToken, stdin: Data(secret.utf8))
            #expect(encrypted.status == 0, "\(encrypted.stderr)")
            let ciphertext = encrypted.stdout.trimmingCharacters(in: .newlines)
            #expect(ciphertext.hasPrefix("coffer:v1:") && !ciphertext.contains("db-password"))

            let decrypted = try await kms(["decrypt", "--key", "app-data", "--context", "service=billing"], token: workerToken, stdin: Data(encrypted.stdout.utf8))
            #expect(decrypted.status == 0, "\(decrypted.stderr)")
            #expect(decrypted.stdout == secret)

            // Another context: refused with the server's reason on stderr, exit 1, no plaintext.
            let wrong = try await kms(["decrypt", "--key", "app-data", "--context", "service=other"], token: workerToken, stdin: Data(ciphertext.utf8))
            #expect(wrong.status == 1 && wrong.stderr.contains("decryption_failed") && wrong.stdout.isEmpty, "\(wrong.stderr)")
            // A read-only key may not use it; no token is a configuration error (exit 2).
            let readOnly = try await kms(["encrypt", "--key", "app-data"], token: try await server.token(for: reader), stdin: Data("x".utf8))
            #expect(readOnly.status == 1 && readOnly.stderr.contains("403"), "\(readOnly.stderr)")
            let noToken = try await kms(["encrypt", "--key", "app-data"], token: nil, stdin: Data("x".utf8))
            #expect(noToken.status == 2 && noToken.stderr.contains("COFFER_TOKEN"), "\(noToken.stderr)")
            let unknownKey = try await kms(["encrypt", "--key", "missing"], token: workerToken, stdin: Data("x".utf8))
            #expect(unknownKey.status == 1 && unknownKey.stderr.contains("kms_key_not_found"), "\(unknownKey.stderr)")
            let help = try await kms(["encrypt", "--help"], token: nil, stdin: Data())
            #expect(help.status == 0 && help.stdout.contains("--key") && help.stdout.contains("--context"))

            // Neither the server's log nor the command's errors hold the plaintext or a token.
            server.stop()
            for text in [server.log, wrong.stderr, readOnly.stderr, unknownKey.stderr] {
                let leaked = text.contains("db-password") || text.contains(workerToken) || text.contains(adminToken)  // a Bool: a failure prints no secret
                #expect(!leaked, "a secret reached a log or an error")
            }
        }
    }
}
