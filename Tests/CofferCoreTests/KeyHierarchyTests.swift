import CofferCore
import CofferCrypto
import CofferKeys
import CofferMigrations
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite struct KeyHierarchyTests {
    static let logger = Logger(label: "test")
    let primary = RSARootKey(privateKey: TestKeys.primary)
    let other = RSARootKey(privateKey: TestKeys.other)

    func migrate(_ database: TestDatabase, root: RSARootKey) async throws -> Migrator.Result {
        let db = try await database.connect()
        do {
            let result = try await Migrator(root: root, logger: Self.logger).run(on: db)
            await db.close()
            return result
        } catch {
            await db.close()
            throw error
        }
    }

    static func snapshot(_ database: TestDatabase) async throws -> [String] {
        try await database.withConnection { connection in
            var rows: [String] = []
            for try await text in try await connection.query(
                """
                SELECT 'kek ' || version || ' ' || root_type || ' ' || root_key_id || ' ' || encode(wrapped_key, 'hex') || ' ' || state FROM key_encryption_keys
                UNION ALL SELECT 'dek ' || purpose || ' ' || version || ' ' || kek_version || ' ' || encode(sealed_key, 'hex') || ' ' || state FROM data_encryption_keys
                UNION ALL SELECT 'migration ' || name || ' ' || checksum FROM schema_migrations
                ORDER BY 1
                """, logger: logger
            ).decode(String.self) { rows.append(text) }
            return rows
        }
    }

    @Test func firstRunCreatesTheHierarchyAndLaterRunsVerifyIt() async throws {
        try await withTestDatabase { database in
            let first = try await migrate(database, root: primary)
            #expect(first.keys == .created)
            #expect(first.appliedMigrations == CofferMigrations.all.map(\.name))
            let before = try await Self.snapshot(database)
            let second = try await migrate(database, root: primary)
            #expect(second.keys == .verified)
            #expect(second.appliedMigrations.isEmpty)
            #expect(try await Self.snapshot(database) == before)

            let (keks, deks) = try await database.withSession { session in
                let keys = KeyRepository(logger: Self.logger)
                return (try await keys.keyEncryptionKeys(on: session), try await keys.dataKeys(on: session))
            }
            #expect(keks.count == 1)
            #expect(keks[0].rootType == "rsa")
            #expect(keks[0].rootKeyID == TestKeys.primary.publicKey.fingerprint)
            #expect(keks[0].state == .active)
            let kek = try TestKeys.primary.unwrap(try #require(keks[0].wrappedKey))
            #expect(kek.count == 32)
            #expect(deks.map(\.purpose) == ["audit", "database", "integrity"])
            for dek in deks {
                let sealed = try SealedValue(bytes: try #require(dek.sealedKey))
                #expect(sealed.keyVersion == 1)
                let raw = try sealed.open(key: .init(data: kek), version: 1, associatedData: AssociatedData.dataKey(purpose: dek.purpose, version: 1))
                #expect(raw.count == 32)
            }
        }
    }

    @Test func wrongRootKeyIsRefusedAndChangesNothing() async throws {
        try await withTestDatabase { database in
            _ = try await migrate(database, root: primary)
            let before = try await Self.snapshot(database)
            do {
                _ = try await migrate(database, root: other)
                Issue.record("the wrong root key was accepted")
            } catch let error as CofferError {
                #expect(error.kind == .rootKeyMismatch)
                #expect(error.message.contains(TestKeys.primary.publicKey.fingerprint))
            }
            #expect(try await Self.snapshot(database) == before)
            let db = try await database.connect()
            await #expect(throws: CofferError.self) { try await Migrator(root: other, logger: Self.logger).loadKeyring(on: db) }
            await db.close()
        }
    }

    @Test func concurrentMigrationsLeaveExactlyOneKeyEncryptionKey() async throws {
        try await withTestDatabase { database in
            let root = primary
            let outcomes = try await withThrowingTaskGroup(of: KeyHierarchy.SetupOutcome.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        // Seven wait for the first's whole migration run, which on two cores
                        // busy with the rest of the suite can take over a minute.
                        let db = try await database.connect(operationTimeout: .seconds(300))
                        do {
                            let result = try await Migrator(root: root, logger: Self.logger).run(on: db)
                            await db.close()
                            return result.keys
                        } catch {
                            await db.close()
                            throw error
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(outcomes.filter { $0 == .created }.count == 1)
            #expect(outcomes.filter { $0 == .verified }.count == 7)
            let counts = try await database.withConnection { connection in
                try await connection.query(
                    "SELECT (SELECT count(*) FROM key_encryption_keys), (SELECT count(*) FROM data_encryption_keys)", logger: Self.logger
                ).collect().first!.decode((Int, Int).self)
            }
            #expect(counts.0 == 1)
            #expect(counts.1 == 3)  // database, audit, integrity
        }
    }

    @Test func aDataKeyMovedToAnotherPurposeDoesNotOpen() async throws {
        try await withTestDatabase { database in
            _ = try await migrate(database, root: primary)
            try await database.withConnection { connection in
                try await connection.query(
                    """
                    UPDATE data_encryption_keys SET sealed_key = (SELECT sealed_key FROM data_encryption_keys WHERE purpose = 'audit')
                    WHERE purpose = 'database'
                    """, logger: Self.logger
                )
            }
            let db = try await database.connect()
            await #expect(throws: SealError.self) { try await Migrator(root: primary, logger: Self.logger).loadKeyring(on: db) }
            await db.close()
        }
    }
}
