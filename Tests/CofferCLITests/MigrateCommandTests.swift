@_spi(Testing) import CofferStore
import CofferCrypto
import CofferMigrations
import CofferTestSupport
import Foundation
import Testing

@Suite struct MigrateCommandTests {
    @Test func eightConcurrentMigrateProcessesLeaveOneKeyEncryptionKey() async throws {
        try await withCLI { cli in
            let binary = try TestEnvironment.binary()
            let environment = cli.environment
            let results = try await withThrowingTaskGroup(of: ProcessResult.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await ProcessRunner.run(binary, ["migrate"], environment: environment) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            for result in results { #expect(result.status == 0, "\(result.stderr)") }
            #expect(results.filter { $0.stdout.contains("keys: created") }.count == 1)
            #expect(results.filter { $0.stdout.contains("keys: verified") }.count == 7)
            let counts = try await cli.database.withConnection { connection in
                try await connection.query(
                    "SELECT (SELECT count(*) FROM key_encryption_keys), (SELECT count(*) FROM data_encryption_keys), (SELECT count(*) FROM schema_migrations)",
                    logger: .init(label: "t")
                ).collect().first!.decode((Int, Int, Int).self)
            }
            #expect(counts.0 == 1)
            #expect(counts.1 == 3)  // database, audit, integrity
            #expect(counts.2 == CofferMigrations.all.count)
        }
    }

    @Test func wrongRootKeyExitsThreeAndLeavesTheDatabaseByteIdentical() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let before = try await cli.dump()
            let wrong = CLI(database: cli.database, key: TestKeys.other)
            let result = try await wrong.run(["migrate"])
            #expect(result.status == 3, "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
            #expect(result.stderr.contains(TestKeys.primary.publicKey.fingerprint))
            #expect(try await cli.dump() == before)
            let serve = try await wrong.run(["serve"])
            #expect(serve.status == 3, "\(serve.stderr)")
            #expect(try await cli.dump() == before)
        }
    }

    @Test func serveRefusesPendingMigrationsAndUnreachableDatabases() async throws {
        try await withCLI { cli in
            let pending = try await cli.run(["serve"])
            #expect(pending.status == 1)
            #expect(pending.stderr.contains("coffer migrate"))
            #expect(pending.stderr.split(separator: "\n").count == 1)

            let unreachable = try await cli.run(["serve"], overrides: ["DATABASE_URL": "postgres://coffer:hidden-pw@127.0.0.1:1/coffer?sslmode=disable"])
            #expect(unreachable.status == 4, "\(unreachable.stderr)")
            #expect(unreachable.stderr.split(separator: "\n").count == 1)
            #expect(!unreachable.stderr.contains("hidden-pw"))
            let migrateUnreachable = try await cli.run(["migrate"], overrides: ["DATABASE_URL": "postgres://coffer:hidden-pw@127.0.0.1:1/coffer?sslmode=disable"])
            #expect(migrateUnreachable.status == 4)
        }
    }

    @Test func apiKeysCanBeCreatedListedAndRevoked() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let created = try await cli.run(["api-keys", "create", "--name", "ci", "--space", "root", "--role", "admin", "--format", "json"])
            #expect(created.status == 0, "\(created.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(created.stdout.utf8)) as? [String: String] ?? [:]
            let id = try #require(object["id"])
            let secret = try #require(object["secret"])
            #expect(object["space"] == "root")
            #expect(object["role"] == "admin")
            // 256 random bits, base64url, behind a prefix.
            #expect(Base64URL.decode(secret.dropFirst(4))?.count == 32)
            let stored = try await cli.database.withConnection { connection in
                try await connection.query("SELECT encode(secret_hash, 'hex') FROM api_keys", logger: .init(label: "t")).collect().first!.decode(String.self)
            }
            #expect(stored == Hex.encode(Array(SHA256Digest256.hash(secret))))
            let dumpShowsSecret = try await cli.dump().contains(secret)  // a Bool: a failure prints no secret
            #expect(!dumpShowsSecret)

            let listed = try await cli.run(["api-keys", "list"])
            #expect(listed.stdout.contains(id))
            let listShowsSecret = listed.stdout.contains(secret)  // a Bool: a failure prints no secret
            #expect(!listShowsSecret)
            #expect(try await cli.run(["api-keys", "revoke", id]).status == 0)
            #expect(try await cli.run(["api-keys", "revoke", id]).status != 0)
            #expect(try await cli.run(["api-keys", "create", "--name", "x", "--space", "nowhere", "--role", "read"]).status == 2)
        }
    }
}

import Crypto
enum SHA256Digest256 {
    static func hash(_ text: String) -> SHA256.Digest { SHA256.hash(data: Array(text.utf8)) }
}
