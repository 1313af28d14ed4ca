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

    /// Runs `body` with a connection, within ``operationTimeout``. When the deadline passes
    /// the caller gets `unavailable` at once, and the connection `body` holds is closed so
    /// that a query waiting on a dead server fails and the pool replaces the connection
    /// (PostgresNIO can leave a query on a connection closed by a server shutdown waiting).
    public func withConnection<Result: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        let held = HeldConnection()
        do {
            return try await withDeadline(operationTimeout, onTimeout: { held.close() }) { [self] in
                try await lease { connection in
                    held.hold(connection)
                    defer { held.release() }
                    return try await body(connection)
                }
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
        let logger = self.logger
        return try await withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
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

/// The connection an operation is using, so its deadline can close it.
private final class HeldConnection: Sendable {
    private let connection = Mutex<PostgresConnection?>(nil)

    func hold(_ value: PostgresConnection) { connection.withLock { $0 = value } }
    func release() { connection.withLock { $0 = nil } }

    func close() {
        guard let held = connection.withLock({ $0 }) else { return }
        Task { try? await held.close() }
    }
}
