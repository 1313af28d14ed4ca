@_spi(Testing) import CofferStore
import Foundation
import Logging
import PostgresNIO

/// A database created for one test (`coffer_test_<random>`) on the test server, dropped
/// by ``withTestDatabase(_:)`` afterwards, so tests run in parallel without sharing state.
public struct TestDatabase: Sendable {
    public let name: String
    /// `DATABASE_URL` of this database.
    public let url: String
    public let settings: DatabaseSettings

    static let logger = Logger(label: "coffer.test")

    /// Creates a new empty database.
    public static func create() async throws -> TestDatabase {
        let adminURL = try TestEnvironment.databaseURL()
        let name = "coffer_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        }
        var components = URLComponents(string: adminURL)!
        components.path = "/\(name)"
        let url = components.string!
        return TestDatabase(name: name, url: url, settings: try DatabaseSettings(url: url))
    }

    /// Drops the database, closing its connections.
    public func drop() async throws {
        let name = self.name
        try await Self.admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: Self.logger)
        }
    }

    /// Opens a single-connection ``Database`` on this database.
    public func connect() async throws -> Database {
        try await Database.connect(settings: settings, logger: Self.logger)
    }

    /// Runs `body` with one raw connection to this database.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let database = try await connect()
        do {
            let result = try await database.withConnection(body)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    /// Runs `body` with a session on this database (for the repositories' operations).
    public func withSession<T: Sendable>(_ body: @escaping @Sendable (StoreSession) async throws -> T) async throws -> T {
        let database = try await connect()
        do {
            let result = try await database.withSession(body)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    static func admin(_ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async throws {
        let database = try await Database.connect(settings: try DatabaseSettings(url: try TestEnvironment.databaseURL()), logger: logger)
        do {
            try await database.withConnection(body)
            await database.close()
        } catch {
            await database.close()
            throw error
        }
    }
}

/// Runs `body` with a fresh database and drops it afterwards, also on failure.
public func withTestDatabase<T>(_ body: (TestDatabase) async throws -> T) async throws -> T {
    let database = try await TestDatabase.create()
    do {
        let result = try await body(database)
        try await database.drop()
        return result
    } catch {
        try? await database.drop()
        throw error
    }
}
