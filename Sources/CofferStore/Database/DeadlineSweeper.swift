import Synchronization

/// Deadlines of the database operations in flight: a table swept by one repeating timer
/// per database, so an operation pays a table insert and removal for its deadline instead
/// of a task and a timer of its own.
final class DeadlineSweeper: Sendable {
    struct Ticket: Sendable {
        fileprivate let id: UInt64
    }

    private struct Entry {
        let deadline: ContinuousClock.Instant
        let expire: @Sendable () -> Void
    }

    private let entries = Mutex<(next: UInt64, pending: [UInt64: Entry])>((0, [:]))
    private let timer = Mutex<Task<Void, Never>?>(nil)

    /// Sweeps ten times per `timeout` (at most every 100 ms), so a deadline fires at most
    /// a tenth of the timeout late. The sweeping task sleeps on Swift's clock, off the NIO
    /// event loops that carry the connections it watches.
    init(every timeout: Duration) {
        let tick = min(max(timeout / 10, .milliseconds(5)), .milliseconds(100))
        let task = Task.detached { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: tick)
                guard let self else { return }
                self.sweep()
            }
        }
        timer.withLock { $0 = task }
    }

    /// Runs `expire` once `limit` has passed, unless ``unregister(_:)`` comes first.
    func register(after limit: Duration, _ expire: @escaping @Sendable () -> Void) -> Ticket {
        let entry = Entry(deadline: .now + limit, expire: expire)
        return entries.withLock { entries in
            entries.next &+= 1
            entries.pending[entries.next] = entry
            return Ticket(id: entries.next)
        }
    }

    func unregister(_ ticket: Ticket) {
        _ = entries.withLock { $0.pending.removeValue(forKey: ticket.id) }
    }

    func stop() {
        timer.withLock { $0?.cancel(); $0 = nil }
    }

    private func sweep() {
        let now = ContinuousClock.now
        let expired = entries.withLock { entries -> [Entry] in
            guard !entries.pending.isEmpty else { return [] }
            let due = entries.pending.filter { $0.value.deadline <= now }
            for id in due.keys { entries.pending.removeValue(forKey: id) }
            return Array(due.values)
        }
        for entry in expired { entry.expire() }
    }
}
