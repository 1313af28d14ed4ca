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
    private let watch = ConnectionWatch()

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

    /// Runs `body` with a connection, within ``operationTimeout``. When the deadline passes
    /// the caller gets `unavailable` at once, the connection `body` holds is closed and its
    /// pool slot is handed back even if `body` never returns: PostgresNIO drops a query
    /// written to a connection the server has just closed without ever failing it, so
    /// such a body waits forever (found by the PostgreSQL restart fault run).
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let operation = LeasedOperation<Result>()
        do {
            return try await withDeadline(operationTimeout, onTimeout: { operation.abandon() }) { [self] in
                // The pool may lend a connection that closed a moment ago (it learns of the
                // close asynchronously): take another one.
                for attempt in 1... {
                    do {
                        return try await lease { [watch] connection in
                            guard !connection.isClosed else { throw ClosedWhenLent() }
                            // A connection that closes under an operation ends it at once.
                            watch.begin(operation, on: connection)
                            defer { watch.end(on: connection) }
                            return try await operation.run(on: connection, body)
                        }
                    } catch is ClosedWhenLent {
                        guard attempt < 5 else { throw StoreError(.unavailable, "the database connections are closing") }
                        try await Task.sleep(for: .milliseconds(2 * attempt))
                    }
                }
                fatalError("unreachable")
            }
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
        try await transaction(beginning: "BEGIN", body)
    }

    /// Runs `body` in a read-only transaction that sees one snapshot of the database
    /// (REPEATABLE READ): reads that must agree with each other, such as loading every key
    /// while a rotation commits, see it all before or all after.
    public func snapshot<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await transaction(beginning: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    private func transaction<Result: Sendable>(
        beginning begin: PostgresQuery,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let logger = self.logger
        return try await withConnection { connection in
            try await connection.query(begin, logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                // A ROLLBACK sent on a connection the server closed would wait forever (and
                // the server has rolled back already).
                if !connection.isClosed {
                    _ = try? await connection.query("ROLLBACK", logger: logger)
                }
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

/// Runs `body`, throwing `unavailable` if it does not finish within `limit`. The caller
/// gets its answer at the deadline even when `body` ignores cancellation (it is cancelled
/// and `onTimeout` runs, but nobody waits for it), so a stuck query cannot hang a request,
/// nor a graceful shutdown waiting on that request.
func withDeadline<Result: Sendable>(
    _ limit: Duration,
    onTimeout: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let race = DeadlineRace<Result>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            race.start(continuation)
            let timer = Task {
                try? await Task.sleep(for: limit)
                guard !Task.isCancelled else { return }
                if race.finish(.failure(StoreError(.unavailable, "the database did not answer within \(limit)"))) {
                    onTimeout()
                    race.cancelWork()
                }
            }
            race.setWork(Task {
                let result: Swift.Result<Result, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                timer.cancel()
                race.finish(result)
            })
        }
    } onCancel: {
        race.cancelWork()
    }
}

/// The first of a body and its deadline to finish resumes the caller; the other is ignored.
private final class DeadlineRace<Result: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var work: Task<Void, Never>?
        var cancelled = false
    }
    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    func setWork(_ work: Task<Void, Never>) {
        let cancelNow = state.withLock { state in
            state.work = work
            return state.cancelled
        }
        if cancelNow { work.cancel() }
    }

    func cancelWork() {
        let work = state.withLock { state in
            state.cancelled = true
            return state.work
        }
        work?.cancel()
    }

    /// Resumes the caller with `result` unless it was resumed already; true if this did.
    @discardableResult
    func finish(_ result: Swift.Result<Result, any Error>) -> Bool {
        let continuation = state.withLock { state in
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
        return continuation != nil
    }
}

/// The pool lent a connection that is already closed.
private struct ClosedWhenLent: Error {}

/// Something running on a connection that can be ended from outside.
private protocol AbandonableOperation: Sendable {
    func abandon()
}

/// The operation running on each pooled connection, so that a connection closing (a
/// server shutdown, or a deadline closing it) ends its operation at once instead of
/// leaving a query written to the closed connection waiting forever. One close callback
/// per connection, registered the first time it is lent.
private final class ConnectionWatch: Sendable {
    private struct Entry {
        var operation: (any AbandonableOperation)?
    }
    private let entries = Mutex<[PostgresConnection.ID: Entry]>([:])

    func begin(_ operation: any AbandonableOperation, on connection: PostgresConnection) {
        let id = connection.id
        let firstSight = entries.withLock { entries -> Bool in
            let first = entries[id] == nil
            entries[id, default: Entry()].operation = operation
            return first
        }
        if firstSight {
            connection.closeFuture.whenComplete { [self] _ in
                let operation = entries.withLock { $0.removeValue(forKey: id)?.operation }
                operation?.abandon()
            }
        }
    }

    func end(on connection: PostgresConnection) {
        entries.withLock { entries in
            if entries[connection.id] != nil { entries[connection.id]!.operation = nil }
        }
    }
}

/// One operation on a leased connection, which its deadline can abandon: the body runs in
/// a task of its own, and the lease ends when the body returns or when ``abandon()`` is
/// called, whichever comes first; abandoning also closes the connection, so the pool
/// replaces it.
private final class LeasedOperation<Result: Sendable>: AbandonableOperation {
    private struct State {
        var connection: PostgresConnection?
        var continuation: CheckedContinuation<Result, any Error>?
        var body: Task<Void, Never>?
        var abandoned = false
    }
    private let state = Mutex(State())

    func run(on connection: PostgresConnection, _ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let abandoned = state.withLock { state -> Bool in
                    guard !state.abandoned else { return true }
                    state.connection = connection
                    state.continuation = continuation
                    return false
                }
                // The deadline passed while waiting for the connection: hand it back unused.
                if abandoned { return continuation.resume(throwing: StoreError(.unavailable, "the database did not answer in time")) }
                let task = Task {
                    let result: Swift.Result<Result, any Error>
                    do { result = .success(try await body(connection)) } catch { result = .failure(error) }
                    self.finish(result)
                }
                state.withLock { $0.body = task }
            }
        } onCancel: {
            state.withLock { $0.body }?.cancel()
        }
    }

    /// Ends the lease with `unavailable` unless the body is done, after closing the
    /// connection: the pool must not lend it again before it knows it is closed.
    func abandon() {
        let (continuation, connection, body) = state.withLock { state in
            state.abandoned = true
            defer { state.continuation = nil; state.connection = nil }
            return (state.continuation, state.connection, state.body)
        }
        guard let continuation else { return }
        body?.cancel()
        let error = StoreError(.unavailable, "the database connection closed or did not answer in time")
        guard let connection, !connection.isClosed else { return continuation.resume(throwing: error) }
        connection.close().whenComplete { _ in continuation.resume(throwing: error) }
    }

    private func finish(_ result: Swift.Result<Result, any Error>) {
        let continuation = state.withLock { state in
            defer { state.continuation = nil; state.connection = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
    }
}
