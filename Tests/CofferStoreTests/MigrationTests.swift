import CofferMigrations
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite struct MigrationTests {
    let logger = Logger(label: "test")

    /// Every `migrations/*.sql` file is compiled in, in order, byte for byte: a file added
    /// to the folder but not to Package.swift and `CofferMigrations.all` fails here.
    @Test func embeddedMigrationsMatchTheFolder() throws {
        let folder = TestEnvironment.repositoryRoot.appendingPathComponent("migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        #expect(CofferMigrations.all.map(\.name) == files)
        for migration in CofferMigrations.all {
            let text = try String(contentsOf: folder.appendingPathComponent(migration.name), encoding: .utf8)
            #expect(migration.sql == text, "\(migration.name) differs from the embedded copy")
        }
    }

    @Test func appliesOnceAndRecordsChecksums() async throws {
        try await withTestDatabase { database in
            let runner = MigrationRunner(logger: logger)
            let (first, second, pending, recorded) = try await database.withSession { session in
                let first = try await runner.apply(on: session)
                let second = try await runner.apply(on: session)
                let pending = try await runner.pending(on: session)
                var recorded: [String: String] = [:]
                for try await (name, checksum) in try await session.connection.query(
                    "SELECT name, checksum FROM schema_migrations", logger: Logger(label: "t")
                ).decode((String, String).self) { recorded[name] = checksum }
                return (first, second, pending.map(\.name), recorded)
            }
            #expect(first == CofferMigrations.all.map(\.name))
            #expect(second.isEmpty)
            #expect(pending.isEmpty)
            for migration in CofferMigrations.all {
                #expect(recorded[migration.name] == MigrationRunner.checksum(of: migration))
            }
        }
    }

    @Test func aChangedAppliedMigrationIsAnError() async throws {
        try await withTestDatabase { database in
            let logger = self.logger
            try await database.withSession { session in
                try await MigrationRunner(logger: logger).apply(on: session)
                try await session.connection.query(
                    "UPDATE schema_migrations SET checksum = 'deadbeef' WHERE name = '0001_initial.sql'", logger: logger
                )
            }
            await #expect(throws: MigrationError.self) {
                try await database.withSession { try await MigrationRunner(logger: logger).pending(on: $0) }
            }
        }
    }

    @Test func aFailingMigrationLeavesNothingBehind() async throws {
        try await withTestDatabase { database in
            let logger = self.logger
            let broken = [Migration(name: "0001_broken.sql", sql: "CREATE TABLE partial (id int); SELECT no_such_function();")]
            await #expect(throws: MigrationError.self) {
                try await database.withSession { try await MigrationRunner(migrations: broken, logger: logger).apply(on: $0) }
            }
            let (tableExists, recorded) = try await database.withConnection { connection in
                let exists = try await connection.query("SELECT to_regclass('partial') IS NOT NULL", logger: logger).collect().first!.decode(Bool.self)
                let count = try await connection.query("SELECT count(*) FROM schema_migrations", logger: logger).collect().first!.decode(Int.self)
                return (exists, count)
            }
            #expect(!tableExists)
            #expect(recorded == 0)
        }
    }
}
