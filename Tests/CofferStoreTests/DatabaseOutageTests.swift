@testable @_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// Regressions of the fault runs (tests/faults): requests hung past their deadline after a
/// PostgreSQL restart, and SIGTERM then never finished draining them.
@Suite struct DatabaseOutageTests {
    /// A gate that ignores cancellation, like a PostgresNIO query on a connection that the
    /// server closed under it.
    final class Gate: Sendable {
        private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
        var isOpen: Bool { state.withLock { $0.open } }

        func wait() async {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.open { return true }
                    state.waiters.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }

        func open() {
            let waiters = state.withLock { state in
                state.open = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
        }
    }

    @Test func theDeadlineAnswersWithoutWaitingForABodyThatIgnoresCancellation() async throws {
        try await withTestDatabase { testDatabase in
            let database = Database(settings: testDatabase.settings, logger: Logger(label: "test"), operationTimeout: .milliseconds(200))
            let gate = Gate()
            // Opens the gate in any case, so a wrong implementation fails instead of hanging
            // (late enough that a loaded CI machine still answers the deadline first).
            let fallback = Task {
                try? await Task.sleep(for: .seconds(60))
                gate.open()
            }
            defer { fallback.cancel() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                do {
                    _ = try await database.withConnection { _ in
                        await gate.wait()
                        return 1
                    }
                    Issue.record("the deadline did not throw")
                } catch let error as StoreError {
                    #expect(error.code == .unavailable)
                    #expect(!gate.isOpen, "the caller waited for the stuck body")
                }
                gate.open()
                group.cancelAll()
            }
        }
    }

    @Test func resultsAndErrorsOfABodyPassThrough() async throws {
        try await withTestDatabase { testDatabase in
            // A deadline no loaded machine reaches: this test is about what passes through.
            let database = Database(settings: testDatabase.settings, logger: Logger(label: "test"), operationTimeout: .seconds(120))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                let answer = try await database.withConnection { _ in 42 }
                #expect(answer == 42)
                await #expect(throws: StoreError(.conflict, "x")) {
                    _ = try await database.withConnection { _ -> Int in throw StoreError(.conflict, "x") }
                }
                #expect(database.usage.inUse == 0)
                group.cancelAll()
            }
        }
    }

    @Test func aBodyThatNeverReturnsGivesItsPoolSlotBackAtTheDeadline() async throws {
        try await withTestDatabase { testDatabase in
            var settings = testDatabase.settings
            settings.maximumConnections = 1
            let database = Database(settings: settings, logger: Logger(label: "test"), operationTimeout: .milliseconds(500))
            let gate = Gate()
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                // A body stuck like a query written to a closed connection.
                await #expect(throws: StoreError.self) {
                    try await database.withConnection { _ in await gate.wait() }
                }
                // The only connection of the pool is free again: closed, and replaced once the
                // pool has made a new one (a stuck lease would make every ping fail).
                var answered = false
                for _ in 0..<20 where !answered { answered = await database.ping() }
                #expect(answered)
                #expect(database.usage.inUse == 0)
                gate.open()
                group.cancelAll()
            }
        }
    }

    @Test func aTransactionWhoseConnectionTheServerEndsFailsAsUnavailable() async throws {
        try await withTestDatabase { testDatabase in
            let database = Database(settings: testDatabase.settings, logger: Logger(label: "test"), operationTimeout: .seconds(120))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                // The server ends the session inside the transaction (as a fast shutdown does);
                // the ROLLBACK that would follow must not wait on the dead connection.
                do {
                    try await database.transaction { session in
                        try await session.connection.query("SELECT pg_terminate_backend(pg_backend_pid())", logger: Logger(label: "test"))
                    }
                    Issue.record("the transaction succeeded on a terminated session")
                } catch let error as StoreError {
                    #expect(error.code == .unavailable)
                }
                // And the pool serves the next operation on a new connection.
                #expect(await database.ping())
                group.cancelAll()
            }
        }
    }
}
