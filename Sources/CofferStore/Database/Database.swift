import Logging
import PostgresNIO
import Synchronization

/// Coffer's access to PostgreSQL: a connection pool for the service, or a single
/// connection for a CLI command, behind the same two calls. Every failure surfaces as
/// a ``StoreError`` and every operation is bounded by ``DatabaseSettings/connectTimeout``
/// plus ``operationTimeout``, so a database outage turns into errors, not hangs.
public final class Database: Sendable {
    private enum Backend: Sendable {
        case pool(PostgresClient)
        case single(PostgresConnection)
    }

    private let backend: Backend
    private let logger: Logger
    private let leased = Atomic<Int>(0)
    private let operations = Atomic<Int>(0)
    private let failures = Atomic<Int>(0)

    /// Connections in use now, operations run and operations failed since start (for metrics).
    public var usage: (inUse: Int, operations: Int, failures: Int) {
        (leased.load(ordering: .relaxed), operations.load(ordering: .relaxed), failures.load(ordering: .relaxed))
    }
    /// Bound on one operation (lease plus queries).
    public let operationTimeout: Duration

    /// A pooled database; the caller must run ``client`` (it is a `Service`).
    public init(settings: DatabaseSettings, logger: Logger, operationTimeout: Duration = .seconds(10)) {
        self.backend = .pool(PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: logger))
        self.logger = logger
        self.operationTimeout = operationTimeout
    }

    private init(connection: PostgresConnection, logger: Logger, operationTimeout: Duration) {
        self.backend = .single(connection)
        self.logger = logger
        self.operationTimeout = operationTimeout
    }

    /// Opens one connection, for a CLI command. Fails fast with `unavailable`.
    public static func connect(settings: DatabaseSettings, logger: Logger, operationTimeout: Duration = .seconds(60)) async throws -> Database {
        do {
            let connection = try await PostgresConnection.connect(
                configuration: try settings.connectionConfiguration(),
                id: 1,
                logger: logger
            )
            return Database(connection: connection, logger: logger, operationTimeout: operationTimeout)
        } catch {
            throw StoreError.map(error)
        }
    }

    /// The pool to run as a service, if this database is pooled.
    public var client: PostgresClient? {
        if case .pool(let client) = backend { return client }
        return nil
    }

    /// Closes a single connection (pools close when their service stops).
    public func close() async {
        if case .single(let connection) = backend {
            try? await connection.close()
        }
    }

    /// Runs `body` with a connection, within ``operationTimeout``.
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withDeadline(operationTimeout) { [self] in try await lease(body) }
        } catch {
            throw StoreError.map(error)
        }
    }

    /// Runs `body` with a connection for as long as it takes (background jobs that hold a
    /// session lock); each query is still bounded by the server's own timeouts.
    public func withDedicatedConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await lease(body)
        } catch {
            throw StoreError.map(error)
        }
    }

    private func lease<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        operations.add(1, ordering: .relaxed)
        do {
            return try await leaseCounted(body)
        } catch {
            failures.add(1, ordering: .relaxed)
            throw error
        }
    }

    private func leaseCounted<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        let counted: @Sendable (PostgresConnection) async throws -> Result = { [self] connection in
            self.leased.add(1, ordering: .relaxed)
            defer { self.leased.subtract(1, ordering: .relaxed) }
            return try await body(connection)
        }
        switch backend {
        case .pool(let client):
            return try await client.withConnection { try await counted($0) }
        case .single(let connection):
            return try await counted(connection)
        }
    }

    /// Runs `body` in a transaction: committed if it returns, rolled back if it throws.
    /// The error thrown by `body` reaches the caller unchanged.
    public func transaction<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// True when a trivial query answers.
    public func ping() async -> Bool {
        (try? await withConnection { connection in
            try await connection.query("SELECT 1", logger: Logger(label: "coffer.ping"))
            return true
        }) ?? false
    }
}

/// Runs `body`, throwing `unavailable` if it does not finish within `limit`.
func withDeadline<Result: Sendable>(
    _ limit: Duration,
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw StoreError(.unavailable, "the database did not answer within \(limit)")
        }
        return result
    }
}
