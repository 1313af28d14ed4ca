import NIOCore
import PostgresNIO
import Synchronization

/// Connections in use, operations and failures of one database (for metrics).
final class UsageCounters: Sendable {
    let leased = Atomic<Int>(0)
    let operations = Atomic<Int>(0)
    let failures = Atomic<Int>(0)
}

/// The pool lent a connection that is already closed.
struct ClosedWhenLent: Error {}

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
final class ConnectionWatch: Sendable {
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
