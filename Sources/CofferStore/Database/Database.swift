import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// Coffer's access to PostgreSQL: a connection pool for the service, or a single
/// connection for a CLI command, behind the same calls. Callers above CofferStore get a
/// ``StoreSession`` (never a connection) and run the named operations of the repositories
/// on it. Every failure surfaces as a ``StoreError`` and every operation is bounded by
/// ``operationTimeout``, so a database outage turns into errors, not hangs.
public final class Database: Sendable {
    enum Backend: Sendable {
        case pool(PostgresClient)
        case single(PostgresConnection)
    }

    let backend: Backend
    let logger: Logger
    private let counters = UsageCounters()
    private let watch = ConnectionWatch()
    private let deadlines: DeadlineSweeper

    /// Connections in use now, operations run and operations failed since start (for metrics).
    public var usage: (inUse: Int, operations: Int, failures: Int) {
        (counters.leased.load(ordering: .relaxed), counters.operations.load(ordering: .relaxed), counters.failures.load(ordering: .relaxed))
    }
    /// Bound on one operation (lease plus queries).
    public let operationTimeout: Duration

    /// A pooled database; the caller must run ``client`` (it is a `Service`).
    public init(settings: DatabaseSettings, logger: Logger, operationTimeout: Duration = .seconds(10)) {
        self.backend = .pool(PostgresClient(configuration: settings.clientConfiguration(), backgroundLogger: logger))
        self.logger = logger
        self.operationTimeout = operationTimeout
        self.deadlines = DeadlineSweeper(every: operationTimeout)
    }

    private init(connection: PostgresConnection, logger: Logger, operationTimeout: Duration) {
        self.backend = .single(connection)
        self.logger = logger
        self.operationTimeout = operationTimeout
        self.deadlines = DeadlineSweeper(every: operationTimeout)
    }

    deinit {
        deadlines.stop()
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

    // MARK: Sessions

    /// Runs `body` with a session outside any transaction (each statement commits on its
    /// own), within ``operationTimeout``.
    @discardableResult
    public func withSession<Result: Sendable>(
        _ body: @escaping @Sendable (StoreSession) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await withConnection { connection in
            try await body(StoreSession(connection: connection, logger: logger))
        }
    }

    /// Runs `body` with a session like ``withSession(_:)``, and once more on a new
    /// connection when the first refused a statement as read-only (its connection may carry
    /// a stale read-only default; see ``StoreSession/closingIfReadOnly(_:)``). For bodies
    /// of one statement, whose refusal wrote nothing.
    @discardableResult
    public func withSession<Result: Sendable>(
        retryingReadOnly: Bool, _ body: @escaping @Sendable (StoreSession) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withSession(body)
        } catch let error as StoreError where retryingReadOnly && error.code == .readOnly {
            return try await withSession(body)
        }
    }

    /// Runs `body` in a transaction, within ``operationTimeout``: committed if it returns,
    /// rolled back if it throws; the error thrown by `body` reaches the caller unchanged.
    /// With ``StoreSession/Isolation/snapshot`` it is read-only and sees one snapshot of the
    /// database (REPEATABLE READ): reads that must agree with each other, such as loading
    /// every key while a rotation commits, see it all before or all after.
    @discardableResult
    public func transaction<Result: Sendable>(
        _ isolation: StoreSession.Isolation = .readCommitted,
        _ body: @escaping @Sendable (StoreSession) async throws -> Result
    ) async throws -> Result {
        try await withSession { session in try await session.transaction(isolation, body) }
    }

    /// Runs `body` with a session for as long as it takes (background jobs that hold a
    /// session lock, migrations); each statement is still bounded by the server's own
    /// timeouts. `body` opens its own transactions with ``StoreSession/transaction(_:_:)``.
    public func withDedicatedSession<Result: Sendable>(
        _ body: @escaping @Sendable (StoreSession) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        do {
            return try await lease { connection in
                try await body(StoreSession(connection: connection, logger: logger))
            }
        } catch {
            throw StoreError.map(error)
        }
    }

    /// True when a trivial query answers.
    public func ping() async -> Bool {
        (try? await withSession { session in
            try await session.query("SELECT 1")
            return true
        }) ?? false
    }

    // MARK: Connections (CofferStore and tests only)

    /// Runs `body` with a raw connection, within ``operationTimeout``. When the deadline
    /// passes, or the connection closes under `body`, the caller gets `unavailable` at
    /// once and the connection is closed (the pool forgets a closed connection, so its
    /// slot is free again) even if `body` never returns: PostgresNIO drops a query written
    /// to a connection the server has just closed without ever failing it, so such a body
    /// waits forever (found by the PostgreSQL restart fault run).
    ///
    /// Cost: one task per operation (the body's), a lock-protected table entry for the
    /// deadline (swept by one timer per database, not a timer per operation), and the
    /// caller's continuation.
    @_spi(Testing) @discardableResult
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        counters.operations.add(1, ordering: .relaxed)
        let operation = BoundedOperation<Result>(counters: counters)
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { continuation in
                    operation.begin(continuation)
                    let limit = operationTimeout
                    let ticket = deadlines.register(after: limit) { operation.abandon(.deadline(limit)) }
                    let task = Task { [self] in
                        let result: Swift.Result<Result, any Error>
                        do { result = .success(try await self.runLeased(operation, body)) } catch { result = .failure(error) }
                        operation.finish(result)
                    }
                    operation.attach(task: task, onEnd: { [deadlines] in deadlines.unregister(ticket) })
                }
            } onCancel: {
                operation.cancel()
            }
        } catch {
            counters.failures.add(1, ordering: .relaxed)
            throw StoreError.map(error)
        }
    }

    /// Leases a connection for `operation`; the pool may lend one that closed a moment ago
    /// (it learns of a close asynchronously): then another one is taken.
    private func runLeased<Result: Sendable>(
        _ operation: BoundedOperation<Result>, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        for attempt in 1... {
            do {
                return try await lease { [watch] connection in
                    guard !connection.isClosed else { throw ClosedWhenLent() }
                    guard operation.hold(connection) else { throw StoreError(.unavailable, "the database did not answer in time") }
                    // A connection that closes under an operation ends it at once.
                    watch.begin(operation, on: connection)
                    defer { watch.end(on: connection) }
                    return try await body(connection)
                }
            } catch is ClosedWhenLent {
                guard attempt < 5 else { throw StoreError(.unavailable, "the database connections are closing") }
                try await Task.sleep(for: .milliseconds(2 * attempt))
            }
        }
        fatalError("unreachable")
    }

    private func lease<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        switch backend {
        case .pool(let client):
            return try await client.withConnection { try await body($0) }
        case .single(let connection):
            return try await body(connection)
        }
    }
}
