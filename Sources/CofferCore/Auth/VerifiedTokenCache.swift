import Synchronization

/// Verified tokens and their principals, so the RSA verification is paid once per token.
/// Bounded: when full it drops what expired, then the least recently used tenth, so a
/// flood of fresh tokens cannot empty it and make every client pay a verification again.
final class VerifiedTokenCache: Sendable {
    private struct Entry {
        var principal: Principal
        var lastUse: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var clock: UInt64 = 0
    }

    private let state = Mutex(State())
    let limit: Int

    init(limit: Int) {
        precondition(limit > 0)
        self.limit = limit
    }

    /// The principal of a cached token, marking it used.
    func principal(of token: String) -> Principal? {
        state.withLock { state in
            guard var entry = state.entries[token] else { return nil }
            state.clock &+= 1
            entry.lastUse = state.clock
            state.entries[token] = entry
            return entry.principal
        }
    }

    func remove(_ token: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: token) }
    }

    func insert(_ token: String, _ principal: Principal, now: Int64) {
        state.withLock { state in
            if state.entries.count >= limit, state.entries[token] == nil {
                state.entries = state.entries.filter { $0.value.principal.expiresAt > now }
                if state.entries.count >= limit {
                    let evict = max(1, limit / 10)
                    let oldest = state.entries.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(evict).map(\.key)
                    for key in oldest { state.entries.removeValue(forKey: key) }
                }
            }
            state.clock &+= 1
            state.entries[token] = Entry(principal: principal, lastUse: state.clock)
        }
    }

    var count: Int { state.withLock { $0.entries.count } }

    func contains(_ token: String) -> Bool { state.withLock { $0.entries[token] != nil } }
}
