import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging
import Synchronization

/// The tamper-evident audit trail. Every event carries a code its writer made under the
/// `audit` data key over who did what (request id, actor, action, resource, outcome), so a
/// row inserted or edited with only database access does not verify. Events are written
/// once and writers do not wait for one another: afterwards one process at a time
/// (``chainPending(limit:)``) closes the range of writer transaction ids that no running
/// transaction can still add to with a checkpoint listing each event of the range by id and
/// hash (of every column), coded together with the previous checkpoint's code. An event
/// edited after its range was closed no longer matches its hash, one deleted is missing from
/// its checkpoint's list, one inserted into a closed range is not in it.
///
/// What is not detected: events deleted from the newest checkpoint together with that
/// checkpoint; columns other than the writer's (space, detail, time) edited before the
/// event's range was closed (within ``CofferLimits/auditChainInterval``); and a whole trail
/// put back from an earlier copy.
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

    /// The hash of every column of an event, as its checkpoint lists it.
    static func eventHash(_ event: ChainedAuditEvent) -> [UInt8] {
        let record = event.record
        var bytes = Array("coffer/audit/event-hash/v1".utf8)
        for field in ["\(record.id)", "\(event.writerXID)", "\(event.occurredAtMicros)", record.actor] { append(Array(field.utf8), to: &bytes) }
        appendOptional(record.actorSpace, to: &bytes)
        for field in [record.action, record.resource] { append(Array(field.utf8), to: &bytes) }
        appendOptional(record.space, to: &bytes)
        for field in [record.requestID, record.outcome.rawValue, record.detail] { append(Array(field.utf8), to: &bytes) }
        append(event.code ?? [], to: &bytes)
        append(Array("\(event.codeVersion ?? 0)".utf8), to: &bytes)
        return Array(SHA256.hash(data: bytes))
    }

    /// What a checkpoint's code authenticates: the previous checkpoint's code, its position,
    /// its range and its list.
    static func checkpointMessage(previous: [UInt8], seq: Int64, xidFrom: Int64, xidTo: Int64, ids: [Int64], hashes: [UInt8]) -> [UInt8] {
        var bytes = Array("coffer/audit/checkpoint/v1".utf8)
        append(previous, to: &bytes)
        for field in ["\(seq)", "\(xidFrom)", "\(xidTo)"] { append(Array(field.utf8), to: &bytes) }
        var idBytes: [UInt8] = []
        idBytes.reserveCapacity(ids.count * 8)
        for id in ids { withUnsafeBytes(of: UInt64(bitPattern: id).bigEndian) { idBytes += $0 } }
        append(idBytes, to: &bytes)
        append(hashes, to: &bytes)
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

    /// Closes the range of writer transaction ids that no running transaction can add to
    /// with a checkpoint, unless another process is chaining or the range holds no event.
    /// Past about `limit` events it closes the range at a transaction boundary and leaves
    /// the rest to the next call. Returns how many events it listed. An event without a
    /// valid writer's code is listed too (its place is kept), logged and counted as an
    /// integrity failure.
    @discardableResult
    public func chainPending(limit: Int = 50_000) async throws -> Int {
        let (repository, keyring) = (self.repository, self.keyring)
        let (count, forged) = try await database.transaction { session -> (Int, [Int64]) in
            guard try await repository.tryLockChain(on: session) else { return (0, []) }
            let head = try await repository.lastCheckpoint(on: session)
            let xidFrom = head?.xidTo ?? 0
            var xidTo = try await repository.oldestRunningTransaction(on: session)
            guard xidTo > xidFrom else { return (0, []) }
            var ids: [Int64] = []
            var hashes: [UInt8] = []
            var forged: [Int64] = []
            var after: (xid: Int64, id: Int64)?
            scan: while true {
                let events = try await repository.events(xidFrom: xidFrom, xidTo: xidTo, after: after, limit: 2000, on: session)
                guard let last = events.last else { break }
                for event in events {
                    if ids.count >= limit, let previous = after, event.writerXID != previous.xid {
                        xidTo = event.writerXID  // the rest of the range is the next checkpoint's
                        break scan
                    }
                    ids.append(event.record.id)
                    hashes += Self.eventHash(event)
                    if !self.hasValidCode(event) { forged.append(event.record.id) }
                    after = (event.writerXID, event.record.id)
                }
                after = (last.writerXID, last.record.id)
            }
            guard !ids.isEmpty else { return (0, []) }
            let seq = (head?.seq ?? 0) + 1
            let message = Self.checkpointMessage(previous: head?.code ?? [], seq: seq, xidFrom: xidFrom, xidTo: xidTo, ids: ids, hashes: hashes)
            let (version, code) = try keyring.authenticationCode(for: message, purpose: .audit)
            try await repository.insert(AuditCheckpoint(
                seq: seq, xidFrom: xidFrom, xidTo: xidTo, eventIDs: ids, eventHashes: hashes, code: code, codeVersion: Int32(version)
            ), on: session)
            return (ids.count, forged)
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
            let events = try await repository.eventsWithoutCode(after: after, limit: 2000, on: session)
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
        /// Every checkpoint is as it was made and none is missing, every event of a closed
        /// range is listed in its checkpoint as it was, none is missing, and every event
        /// carries its writer's code. `pending` events are in no checkpoint yet.
        case intact(chained: Int, pending: Int)
        /// The first event found edited, inserted or deleted, and why; `seq` is the
        /// checkpoint whose range holds it.
        case broken(eventID: Int64, seq: Int64?, reason: String)
    }

    /// Checks the whole trail: the checkpoints in order, each against the events of its
    /// range, then the events in no checkpoint yet. A broken trail is logged as an
    /// integrity failure when `logging` (the service's periodic check; `coffer audit verify`
    /// reports it itself).
    public func verify(batch: Int = 2000, logging: Bool = true) async throws -> Verdict {
        let verdict = try await check(batch: batch)
        lastVerdict.withLock { $0 = verdict }
        if logging, case .broken(let id, let seq, let reason) = verdict {
            logger.error("integrity failure: the audit trail is not intact", metadata: [
                "table": "audit_events", "event": "\(id)", "checkpoint": "\(seq.map(String.init) ?? "-")", "reason": "\(reason)",
            ])
        }
        return verdict
    }

    private func check(batch: Int) async throws -> Verdict {
        let repository = self.repository
        var expected: Int64 = 1
        var previous: [UInt8] = []
        var chained = 0
        var end: Int64 = 0
        while true {
            let checkpoints = try await database.withSession { [expected] in try await repository.checkpoints(after: expected - 1, limit: 50, on: $0) }
            guard !checkpoints.isEmpty else { break }
            for checkpoint in checkpoints {
                let seq = checkpoint.seq
                let first = checkpoint.eventIDs.first ?? 0
                guard seq == expected, checkpoint.xidFrom == end else {
                    return .broken(eventID: first, seq: seq, reason: "the checkpoint before this event's (\(expected - 1)) or one between was deleted")
                }
                let message = Self.checkpointMessage(previous: previous, seq: seq, xidFrom: checkpoint.xidFrom, xidTo: checkpoint.xidTo,
                                                     ids: checkpoint.eventIDs, hashes: checkpoint.eventHashes)
                guard let version = UInt32(exactly: checkpoint.codeVersion), checkpoint.eventHashes.count == checkpoint.eventIDs.count * 32,
                      keyring.isValidAuthenticationCode(checkpoint.code, for: message, purpose: .audit, version: version)
                else {
                    return .broken(eventID: first, seq: seq, reason: "its checkpoint was edited (the checkpoint's code does not verify)")
                }
                var listed: [Int64: ArraySlice<UInt8>] = [:]
                for (index, id) in checkpoint.eventIDs.enumerated() {
                    listed[id] = checkpoint.eventHashes[(index * 32)..<(index * 32 + 32)]
                }
                var after: (xid: Int64, id: Int64)?
                while true {
                    let events = try await database.withSession { [after] in
                        try await repository.events(xidFrom: checkpoint.xidFrom, xidTo: checkpoint.xidTo, after: after, limit: batch, on: $0)
                    }
                    guard let last = events.last else { break }
                    for event in events {
                        let id = event.record.id
                        guard let hash = listed.removeValue(forKey: id) else {
                            return .broken(eventID: id, seq: seq, reason: "inserted: its writer's transaction lies in the range of checkpoint \(seq), which does not list it")
                        }
                        guard Array(hash) == Self.eventHash(event) else {
                            return .broken(eventID: id, seq: seq, reason: "edited after checkpoint \(seq) listed it (its hash differs)")
                        }
                        guard hasValidCode(event) else {
                            return .broken(eventID: id, seq: seq, reason: "not written by Coffer: it does not carry its writer's code")
                        }
                        chained += 1
                    }
                    after = (last.writerXID, last.record.id)
                }
                if let missing = checkpoint.eventIDs.first(where: { listed[$0] != nil }) {
                    return .broken(eventID: missing, seq: seq, reason: "deleted: checkpoint \(seq) lists it")
                }
                previous = checkpoint.code
                end = checkpoint.xidTo
                expected += 1
            }
        }
        var pending = 0
        var after: (xid: Int64, id: Int64)?
        while true {
            let events = try await database.withSession { [after, end] in try await repository.events(xidFrom: end, xidTo: nil, after: after, limit: batch, on: $0) }
            guard let last = events.last else { break }
            for event in events {
                guard hasValidCode(event) else {
                    return .broken(eventID: event.record.id, seq: nil, reason: "not written by Coffer, or its actor, action, resource, request id or outcome was edited (its writer's code does not verify)")
                }
                pending += 1
            }
            after = (last.writerXID, last.record.id)
        }
        return .intact(chained: chained, pending: pending)
    }

    /// The last verification's verdict in this process, nil before the first.
    public var lastVerification: Verdict? { lastVerdict.withLock { $0 } }
}
