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

/// Connections in use, operations and failures of one database (for metrics).
final class UsageCounters: Sendable {
    let leased = Atomic<Int>(0)
    let operations = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
}

/// The pool lent a connection that is already closed.
private struct ClosedWhenLent: Error {}

/// Something running on a connection that can be ended from outside.
protocol AbandonableOperation: Sendable {
    func abandon(_ reason: AbandonReason)
}

/// Why an operation was ended from outside; each reads differently in the error, so a
/// failure says which happened.
enum AbandonReason: Sendable {
    case deadline(Duration)
    case connectionClosed

    var error: StoreError {
        switch self {
        case .deadline(let limit): StoreError(.unavailable, "the database did not answer within \(limit)")
        case .connectionClosed: StoreError(.unavailable, "the database connection closed under the operation")
        }
    }
}

/// One bounded operation: the caller waits on a continuation that the first of three
/// things resumes: the body's result, the deadline, or its connection closing. Abandoning
/// closes the connection before resuming, so the pool never lends it again and a body
/// stuck on it holds no pool slot.
final class BoundedOperation<Result: Sendable>: AbandonableOperation {
    private struct State {
        var continuation: CheckedContinuation<Result, any Error>?
        var connection: PostgresConnection?
        var task: Task<Void, Never>?
        var onEnd: (@Sendable () -> Void)?
        var ended = false
        var cancelled = false
    }
    private let state = Mutex(State())
    private let counters: UsageCounters

    init(counters: UsageCounters) {
        self.counters = counters
    }

    func begin(_ continuation: CheckedContinuation<Result, any Error>) {
        state.withLock { $0.continuation = continuation }
    }

    /// Stores the body's task and the clean-up to run once the operation ends; runs them
    /// at once if it already ended (a deadline or a cancellation came first).
    func attach(task: Task<Void, Never>, onEnd: @escaping @Sendable () -> Void) {
        let (ended, cancelled) = state.withLock { state -> (Bool, Bool) in
            state.task = task
            if !state.ended { state.onEnd = onEnd }
            return (state.ended, state.cancelled)
        }
        if ended { onEnd() }
        if ended || cancelled { task.cancel() }
    }

    /// Records the leased connection; false if the operation was abandoned meanwhile.
    func hold(_ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard !state.ended else { return false }
            state.connection = connection
            counters.leased.add(1, ordering: .relaxed)
            return true
        }
    }

    /// The body finished: resumes the caller unless the operation was abandoned.
    func finish(_ result: Swift.Result<Result, any Error>) {
        guard let (continuation, onEnd, _) = end() else { return }
        onEnd?()
        continuation.resume(with: result)
    }

    /// The deadline passed or the connection closed: resumes the caller with `unavailable`
    /// after closing the connection, unless the body finished first.
    func abandon(_ reason: AbandonReason) {
        guard let (continuation, onEnd, connection) = end() else { return }
        onEnd?()
        state.withLock { $0.task }?.cancel()
        let error = reason.error
        guard let connection, !connection.isClosed else { return continuation.resume(throwing: error) }
        connection.close().whenComplete { _ in continuation.resume(throwing: error) }
    }

    /// The caller was cancelled: the body is cancelled and its error (or result) answers.
    func cancel() {
        let task = state.withLock { state -> Task<Void, Never>? in
            state.cancelled = true
            return state.task
        }
        task?.cancel()
    }

    private func end() -> (CheckedContinuation<Result, any Error>, (@Sendable () -> Void)?, PostgresConnection?)? {
        state.withLock { state in
            guard !state.ended, let continuation = state.continuation else { return nil }
            state.ended = true
            if state.connection != nil { counters.leased.subtract(1, ordering: .relaxed) }
            defer { state.continuation = nil; state.onEnd = nil; state.connection = nil }
            return (continuation, state.onEnd, state.connection)
        }
    }
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
                operation?.abandon(.connectionClosed)
            }
        }
    }

    func end(on connection: PostgresConnection) {
        entries.withLock { entries in
            if entries[connection.id] != nil { entries[connection.id]!.operation = nil }
        }
    }
}
