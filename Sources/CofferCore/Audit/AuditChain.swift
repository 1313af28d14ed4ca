import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging
import Synchronization

/// The tamper-evident audit trail. Every event carries a code its writer made under the
/// `audit` data key over who did what (request id, actor, action, resource, outcome), so a
/// row inserted or edited with only database access does not verify. Writers do not wait
/// for one another: afterwards one process at a time (``chainPending(limit:)``) gives the
/// events consecutive positions, in id order, once no transaction that could still add an
/// earlier id is open, and a chain code over the previous code and every column of the
/// event. An event edited after it was chained breaks its code; one deleted leaves a gap.
///
/// What is not detected: events deleted from the end of the chain (the newest ones, with
/// nothing chained after them); columns other than the writer's (space, detail, time)
/// edited before the event was chained (within ``CofferLimits/auditChainInterval``); and
/// a whole trail put back from an earlier copy.
public final class AuditChain: Sendable {
    private let database: Database
    private let keyring: Keyring
    private let repository: AuditRepository
    private let logger: Logger
    private let lastVerdict = Mutex<Verdict?>(nil)

    public init(database: Database, keyring: Keyring, logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.repository = AuditRepository(logger: logger)
        self.logger = logger
    }

    // MARK: Codes

    /// The code a writer stores with an event, or nil when no audit key is loaded.
    public static func code(for event: AuditRecord, keyring: Keyring) -> (code: [UInt8], version: Int32)? {
        code(requestID: event.requestID, actor: event.actor, action: event.action, resource: event.resource, outcome: event.outcome, keyring: keyring)
    }

    /// The code of an event the database writes (in a statement that also does the action),
    /// from the fields the writer knows before it runs.
    public static func code(
        requestID: String, actor: String, action: String, resource: String, outcome: AuditRecord.Outcome, keyring: Keyring
    ) -> (code: [UInt8], version: Int32)? {
        let message = eventMessage(requestID: requestID, actor: actor, action: action, resource: resource, outcome: outcome.rawValue)
        guard let (version, code) = try? keyring.authenticationCode(for: message, purpose: .audit) else { return nil }
        return (code, Int32(version))
    }

    static func eventMessage(requestID: String, actor: String, action: String, resource: String, outcome: String) -> [UInt8] {
        var bytes = Array("coffer/audit/event/v1".utf8)
        for field in [requestID, actor, action, resource, outcome] { append(Array(field.utf8), to: &bytes) }
        return bytes
    }

    static func chainMessage(previous: [UInt8], seq: Int64, event: ChainedAuditEvent) -> [UInt8] {
        let record = event.record
        var bytes = Array("coffer/audit/chain/v1".utf8)
        append(previous, to: &bytes)
        for field in ["\(seq)", "\(record.id)", "\(event.occurredAtMicros)", record.actor] { append(Array(field.utf8), to: &bytes) }
        appendOptional(record.actorSpace, to: &bytes)
        for field in [record.action, record.resource] { append(Array(field.utf8), to: &bytes) }
        appendOptional(record.space, to: &bytes)
        for field in [record.requestID, record.outcome.rawValue, record.detail] { append(Array(field.utf8), to: &bytes) }
        append(event.code ?? [], to: &bytes)
        append(Array("\(event.codeVersion ?? 0)".utf8), to: &bytes)
        return bytes
    }

    private static func append(_ field: [UInt8], to bytes: inout [UInt8]) {
        let count = UInt32(clamping: field.count)
        bytes += [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
        bytes += field
    }

    private static func appendOptional(_ field: String?, to bytes: inout [UInt8]) {
        guard let field else { bytes.append(0); return }
        bytes.append(1)
        append(Array(field.utf8), to: &bytes)
    }

    private func hasValidCode(_ event: ChainedAuditEvent) -> Bool {
        guard let code = event.code, let version = event.codeVersion.flatMap(UInt32.init(exactly:)) else { return false }
        let record = event.record
        let message = Self.eventMessage(requestID: record.requestID, actor: record.actor, action: record.action,
                                        resource: record.resource, outcome: record.outcome.rawValue)
        return keyring.isValidAuthenticationCode(code, for: message, purpose: .audit, version: version)
    }

    // MARK: Chaining

    /// Chains the events that can be chained now, up to `limit`, unless another process is
    /// chaining. Returns how many it chained. An event without a valid code of its writer is
    /// chained too (its place is kept), logged and counted as an integrity failure.
    @discardableResult
    public func chainPending(limit: Int = 5000) async throws -> Int {
        let (repository, keyring) = (self.repository, self.keyring)
        let (count, forged) = try await database.transaction { session -> (Int, [Int64]) in
            guard try await repository.tryLockChain(on: session) else { return (0, []) }
            let events = try await repository.chainableEvents(limit: limit, on: session)
            guard !events.isEmpty else { return (0, []) }
            var (seq, previous) = try await repository.chainHead(on: session) ?? (0, [])
            var links: [AuditChainLink] = []
            var forged: [Int64] = []
            for event in events {
                seq += 1
                let (version, chain) = try keyring.authenticationCode(for: Self.chainMessage(previous: previous, seq: seq, event: event), purpose: .audit)
                links.append(AuditChainLink(id: event.record.id, seq: seq, chain: chain, chainVersion: Int32(version)))
                if !self.hasValidCode(event) { forged.append(event.record.id) }
                previous = chain
            }
            try await repository.chain(links, on: session)
            return (links.count, forged)
        }
        for id in forged {
            logger.error("integrity failure: an audit event does not carry its writer's code (inserted or edited outside Coffer)", metadata: [
                "table": "audit_events", "event": "\(id)",
            ])
        }
        if !forged.isEmpty { forgedCount.add(forged.count, ordering: .relaxed) }
        return count
    }

    private let forgedCount = Atomic<Int>(0)

    /// Events chained without a valid writer's code since start, for the metric.
    public var forgedEventsChained: Int { forgedCount.load(ordering: .relaxed) }

    /// Gives every event that exists a code, once: the upgrade that adds codes vouches for
    /// the trail written before them (like row integrity's upgrade). Returns how many.
    static func vouchForExisting(keyring: Keyring, logger: Logger, on session: StoreSession) async throws -> Int {
        let repository = AuditRepository(logger: logger)
        var after: Int64 = 0
        var count = 0
        while true {
            let events = try await repository.unchainedEvents(after: after, limit: 2000, on: session)
            guard let last = events.last else { return count }
            for event in events where event.code == nil {
                guard let (code, version) = code(for: event.record, keyring: keyring) else {
                    throw CofferError.unavailable("no audit data key is loaded")
                }
                try await repository.setCode(eventID: event.record.id, code: code, version: version, on: session)
                count += 1
            }
            after = last.record.id
        }
    }

    // MARK: Verification

    /// What checking the trail found.
    public enum Verdict: Sendable, Equatable {
        /// Every chained event is as it was chained, none is missing between them, and every
        /// event carries its writer's code. `pending` events are not chained yet.
        case intact(chained: Int, pending: Int)
        /// The first event found altered, inserted or after a deletion, and why.
        case broken(eventID: Int64, seq: Int64?, reason: String)
    }

    /// Checks the whole trail: the chain in order, then the events not chained yet. A broken
    /// trail is logged as an integrity failure when `logging` (the service's periodic check;
    /// `coffer audit verify` reports it itself).
    public func verify(batch: Int = 2000, logging: Bool = true) async throws -> Verdict {
        let verdict = try await check(batch: batch)
        lastVerdict.withLock { $0 = verdict }
        if logging, case .broken(let id, let seq, let reason) = verdict {
            logger.error("integrity failure: the audit trail is not intact", metadata: [
                "table": "audit_events", "event": "\(id)", "position": "\(seq.map(String.init) ?? "-")", "reason": "\(reason)",
            ])
        }
        return verdict
    }

    private func check(batch: Int) async throws -> Verdict {
        let repository = self.repository
        var expected: Int64 = 1
        var previous: [UInt8] = []
        while true {
            let events = try await database.withSession { [expected] in try await repository.chainedEvents(after: expected - 1, limit: batch, on: $0) }
            guard !events.isEmpty else { break }
            for event in events {
                guard let seq = event.seq, let chain = event.chain else { continue }
                if seq != expected {
                    return .broken(eventID: event.record.id, seq: seq, reason: "the event chained before it (position \(expected)) was deleted")
                }
                let message = Self.chainMessage(previous: previous, seq: seq, event: event)
                guard let version = event.chainVersion.flatMap(UInt32.init(exactly:)),
                      keyring.isValidAuthenticationCode(chain, for: message, purpose: .audit, version: version)
                else {
                    return .broken(eventID: event.record.id, seq: seq, reason: "edited after it was chained, or its chain code was (the code does not verify)")
                }
                guard hasValidCode(event) else {
                    return .broken(eventID: event.record.id, seq: seq, reason: "not written by Coffer: it does not carry its writer's code")
                }
                previous = chain
                expected += 1
            }
        }
        var pending = 0
        var after: Int64 = 0
        while true {
            let events = try await database.withSession { [after] in try await repository.unchainedEvents(after: after, limit: batch, on: $0) }
            guard let last = events.last else { break }
            for event in events {
                guard hasValidCode(event) else {
                    return .broken(eventID: event.record.id, seq: nil, reason: "not written by Coffer, or its actor, action, resource, request id or outcome was edited (its writer's code does not verify)")
                }
                pending += 1
            }
            after = last.record.id
        }
        return .intact(chained: Int(expected - 1), pending: pending)
    }


    /// The last verification's verdict in this process, nil before the first.
    public var lastVerification: Verdict? { lastVerdict.withLock { $0 } }
}
