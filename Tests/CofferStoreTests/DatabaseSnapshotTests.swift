@testable @_spi(Testing) import CofferStore
import CofferTestSupport
import Logging
import PostgresNIO
import Testing

/// `Database.transaction(.snapshot)`, which loading the keyring uses so that a key rotation committing
/// between its reads is seen entirely or not at all.
@Suite struct DatabaseSnapshotTests {
    static let logger = Logger(label: "test")

    @Test func readsInsideASnapshotDoNotSeeACommitMadeMeanwhileAndCannotWrite() async throws {
        try await withTestDatabase { testDatabase in
            let database = Database(settings: testDatabase.settings, logger: Self.logger, operationTimeout: .seconds(120))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                try await database.withConnection { connection in
                    try await connection.query("CREATE TABLE snapshot_probe (n int)", logger: Self.logger)
                }
                let counts = try await database.transaction(.snapshot) { session in
                    let before = try await Self.count(on: session.connection)
                    // Another session commits a row between the two reads.
                    try await database.withConnection { other in
                        try await other.query("INSERT INTO snapshot_probe VALUES (1)", logger: Self.logger)
                    }
                    return (before, try await Self.count(on: session.connection))
                }
                #expect(counts.0 == 0)
                #expect(counts.1 == 0)
                let after = try await database.withConnection { try await Self.count(on: $0) }
                #expect(after == 1)

                // A write inside a snapshot is refused by the server as read-only.
                do {
                    try await database.transaction(.snapshot) { session in
                        try await session.connection.query("INSERT INTO snapshot_probe VALUES (2)", logger: Self.logger)
                    }
                    Issue.record("a snapshot accepted a write")
                } catch let error as StoreError {
                    #expect(error.code == .readOnly, "\(error)")
                }
                let unchanged = try await database.withConnection { try await Self.count(on: $0) }
                #expect(unchanged == 1)
                group.cancelAll()
            }
        }
    }

    static func count(on connection: PostgresConnection) async throws -> Int64 {
        let rows = try await connection.query("SELECT count(*) FROM snapshot_probe", logger: logger).collect()
        return try rows.first!.decode(Int64.self)
    }
}
