import CofferStore
import Synchronization

/// Gathers identical refusals (the same action, resource, space, caller, outcome and
/// detail) so that a flood of them writes a few audit rows, not one each: the first
/// refusal of a window is recorded at once, as before; those that repeat it within the
/// window are counted, and one event `repeats=N over=Ws` records them when the window
/// ends. At most `capacity` distinct refusals are followed at a time; past that, further
/// ones are counted under their action alone (resource `*`), so memory stays bounded and
/// nothing goes uncounted.
public final class RefusalAggregator: Sendable {
    struct Key: Hashable {
        var action: String
        var resource: String
        var space: String?
        var actor: String
        var actorSpace: String?
        var outcome: AuditRecord.Outcome
        var detail: String
    }

    private struct Window {
        var started: Double
        var repeats: Int
        var lastRequestID: String
    }

    /// Seconds a window lasts.
    public let window: Int
    let capacity: Int
    private struct State {
        var windows: [Key: Window] = [:]
        /// Windows that ended and were replaced by a new one before a drain wrote them.
        var ended: [(Key, Window)] = []
    }

    private let state = Mutex(State())
    private let now: @Sendable () -> Double

    public convenience init(window: Int = CofferLimits.defaultRefusalWindow, capacity: Int = 10_000) {
        self.init(window: window, capacity: capacity, now: RateLimiter.monotonicSeconds)
    }

    init(window: Int, capacity: Int, now: @escaping @Sendable () -> Double) {
        precondition(window > 0 && capacity > 0)
        self.window = window
        self.capacity = capacity
        self.now = now
    }

    /// Counts `event`; true if it is the first of its window and must be written now.
    func admit(_ event: AuditRecord) -> Bool {
        let now = self.now()
        return state.withLock { state in
            var key = Self.key(of: event)
            if let open = state.windows[key] {
                if now - open.started < Double(window) {
                    state.windows[key]!.repeats += 1
                    state.windows[key]!.lastRequestID = event.requestID
                    return false
                }
                // Ended but not yet written: keep its count for the next drain.
                if open.repeats > 0 { state.ended.append((key, open)) }
            } else if state.windows.count >= capacity {
                key.resource = "*"
                key.detail = "distinct refusals over the limit of \(capacity)"
                state.windows[key, default: Window(started: now, repeats: 0, lastRequestID: "")].repeats += 1
                state.windows[key]!.lastRequestID = event.requestID
                return false
            }
            state.windows[key] = Window(started: now, repeats: 0, lastRequestID: event.requestID)
            return true
        }
    }

    /// The events that summarise the windows that have ended (all of them with `all`, at
    /// shutdown), forgetting those windows.
    func drain(all: Bool = false) -> [AuditRecord] {
        let now = self.now()
        return state.withLock { state in
            var summaries: [AuditRecord] = []
            var finished = state.ended
            state.ended = []
            for (key, open) in state.windows where all || now - open.started >= Double(window) {
                state.windows.removeValue(forKey: key)
                finished.append((key, open))
            }
            for (key, open) in finished {
                guard open.repeats > 0 else { continue }
                let detail = (key.detail.isEmpty ? "" : key.detail + " ") + "repeats=\(open.repeats) over=\(window)s"
                summaries.append(AuditRecord(
                    actor: key.actor, actorSpace: key.actorSpace, action: key.action, resource: key.resource, space: key.space,
                    requestID: open.lastRequestID, outcome: key.outcome, detail: detail
                ))
            }
            return summaries
        }
    }

    private static func key(of event: AuditRecord) -> Key {
        Key(action: event.action, resource: event.resource, space: event.space, actor: event.actor, actorSpace: event.actorSpace,
            outcome: event.outcome, detail: event.detail)
    }
}
