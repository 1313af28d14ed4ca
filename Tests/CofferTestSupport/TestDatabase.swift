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

    /// Creates a new empty database, or a copy of `template` (see ``TemplateDatabases``).
    public static func create(template: String? = nil) async throws -> TestDatabase {
        let adminURL = try TestEnvironment.databaseURL()
        let name = "coffer_test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(16).lowercased()
        try await admin { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)\(template.map { " TEMPLATE \($0)" } ?? "")"), logger: logger)
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

    /// Opens a single-connection ``Database`` on this database; `operationTimeout` bounds
    /// each operation (a whole migration run is one). The default is generous: when every
    /// suite starts at once on two cores, dozens of migrations run side by side and one
    /// has taken over a minute.
    public func connect(operationTimeout: Duration = .seconds(300)) async throws -> Database {
        try await Database.connect(settings: settings, logger: Self.logger, operationTimeout: operationTimeout)
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

/// Databases prepared once per test process (migrated, with keys) and copied for each test
/// that asks for one, so that dozens of tests starting together do not each run every
/// migration on two busy cores.
public actor TemplateDatabases {
    public static let shared = TemplateDatabases()
    private var ready: [String: Task<String, any Error>] = [:]

    /// The name of the template database `key`, prepared by `prepare` the first time.
    public func template(_ key: String, prepare: @escaping @Sendable (TestDatabase) async throws -> Void) async throws -> String {
        if let task = ready[key] { return try await task.value }
        let task = Task<String, any Error> {
            let database = try await TestDatabase.create()
            try await prepare(database)  // must close its connections: a template may have none
            return database.name
        }
        ready[key] = task
        return try await task.value
    }
}

/// Runs `body` with a fresh database and drops it afterwards, also on failure. With
/// `template`, the database starts as a copy of the one `prepare` made (once per process).
public func withTestDatabase<T>(
    template: String? = nil, prepare: (@Sendable (TestDatabase) async throws -> Void)? = nil, _ body: (TestDatabase) async throws -> T
) async throws -> T {
    var source: String?
    if let template, let prepare { source = try await TemplateDatabases.shared.template(template, prepare: prepare) }
    let database = try await TestDatabase.create(template: source)
    do {
        let result = try await body(database)
        try await database.drop()
        return result
    } catch {
        try? await database.drop()
        throw error
    }
}
