import Foundation
import Logging
import PostgresNIO

/// An audit event with what makes it tamper-evident: the code its writer gave it (over who
/// did what) and the transaction that wrote it.
public struct ChainedAuditEvent: Sendable, Equatable {
    public var record: AuditRecord
    /// `occurred_at` in whole microseconds since 1970, exactly as stored.
    public var occurredAtMicros: Int64
    /// The writer's transaction id (`writer_xid`).
    public var writerXID: Int64
    public var code: [UInt8]?
    public var codeVersion: Int32?
}

/// A row of `audit_checkpoints`: the events whose writers' transaction ids lie in
/// `[xidFrom, xidTo)`, by id and hash, coded together with the previous checkpoint's code.
public struct AuditCheckpoint: Sendable, Equatable {
    public var seq: Int64
    public var xidFrom: Int64
    public var xidTo: Int64
    public var eventIDs: [Int64]
    /// 32 bytes per event, in the order of ``eventIDs``.
    public var eventHashes: [UInt8]
    public var code: [UInt8]
    public var codeVersion: Int32

    public init(seq: Int64, xidFrom: Int64, xidTo: Int64, eventIDs: [Int64], eventHashes: [UInt8], code: [UInt8], codeVersion: Int32) {
        self.seq = seq
        self.xidFrom = xidFrom
        self.xidTo = xidTo
        self.eventIDs = eventIDs
        self.eventHashes = eventHashes
        self.code = code
        self.codeVersion = codeVersion
    }
}

/// SQL for the audit chain (migration 0009): events are written once, in parallel, each
/// with its writer's code; one process at a time closes ranges of writer transaction ids
/// that no running transaction can add to with a checkpoint. Nothing updates an event.
extension AuditRepository {
    static let chainColumns = """
        id, occurred_at, floor(extract(epoch FROM occurred_at) * 1000000)::bigint, writer_xid::text::bigint, actor, actor_space,
        action, resource, space, request_id, outcome, detail, mac, mac_version
        """

    /// Takes the chainer's lock for the current transaction if no other process holds it.
    public func tryLockChain(on session: StoreSession) async throws -> Bool {
        try await session.query("SELECT pg_try_advisory_xact_lock(710233)", logger: logger).collect().first?.decode(Bool.self) ?? false
    }

    /// The oldest transaction id still running: every event written by a smaller one is
    /// committed (and visible) or never will be.
    public func oldestRunningTransaction(on session: StoreSession) async throws -> Int64 {
        try await session.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint", logger: logger)
            .collect().first?.decode(Int64.self) ?? 0
    }

    /// The newest checkpoint, nil when none was made.
    public func lastCheckpoint(on session: StoreSession) async throws -> AuditCheckpoint? {
        try await checkpoints(session.query(
            "SELECT \(unescaped: Self.checkpointColumns) FROM audit_checkpoints ORDER BY seq DESC LIMIT 1", logger: logger
        )).first
    }

    /// Up to `limit` checkpoints after `seq`, in order.
    public func checkpoints(after seq: Int64, limit: Int, on session: StoreSession) async throws -> [AuditCheckpoint] {
        try await checkpoints(session.query(
            "SELECT \(unescaped: Self.checkpointColumns) FROM audit_checkpoints WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)",
            logger: logger
        ))
    }

    public func insert(_ checkpoint: AuditCheckpoint, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO audit_checkpoints (seq, xid_from, xid_to, event_ids, event_hashes, code, code_version)
            VALUES (\(checkpoint.seq), \(String(checkpoint.xidFrom))::xid8, \(String(checkpoint.xidTo))::xid8, \(checkpoint.eventIDs),
                    \(ByteBuffer(bytes: checkpoint.eventHashes)), \(ByteBuffer(bytes: checkpoint.code)), \(checkpoint.codeVersion))
            """,
            logger: logger
        )
    }

    /// Up to `limit` events written by transactions in `[xidFrom, xidTo)` (to the end when
    /// `xidTo` is nil), after the event `after` (its writer's id and its id), in the order
    /// of writer transaction id, then id.
    public func events(
        xidFrom: Int64, xidTo: Int64?, after: (xid: Int64, id: Int64)?, limit: Int, on session: StoreSession
    ) async throws -> [ChainedAuditEvent] {
        let (afterXID, afterID) = (after?.xid ?? xidFrom, after?.id ?? -1)
        return try await events(session.query(
            """
            SELECT \(unescaped: Self.chainColumns) FROM audit_events
            WHERE writer_xid >= \(String(xidFrom))::xid8
              AND (\(xidTo.map(String.init))::text IS NULL OR writer_xid < \(xidTo.map(String.init))::xid8)
              AND (writer_xid, id) > (\(String(afterXID))::xid8, \(afterID))
            ORDER BY writer_xid, id LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    /// Up to `limit` events without a writer's code with an id above `id`, by id.
    public func eventsWithoutCode(after id: Int64, limit: Int, on session: StoreSession) async throws -> [ChainedAuditEvent] {
        try await events(session.query(
            "SELECT \(unescaped: Self.chainColumns) FROM audit_events WHERE mac IS NULL AND id > \(id) ORDER BY id LIMIT \(limit)",
            logger: logger
        ))
    }

    /// Gives an event written before events carried codes (the upgrade) its code.
    public func setCode(eventID: Int64, code: [UInt8], version: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE audit_events SET mac = \(ByteBuffer(bytes: code)), mac_version = \(version) WHERE id = \(eventID)", logger: logger
        )
    }

    /// Events and checkpoints whose code a version of the audit key made.
    public func countEvents(authenticatedBy version: Int32, on session: StoreSession) async throws -> Int64 {
        try await session.query(
            """
            SELECT (SELECT count(*) FROM audit_events WHERE mac_version = \(version))
                 + (SELECT count(*) FROM audit_checkpoints WHERE code_version = \(version))
            """,
            logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    static let checkpointColumns = "seq, xid_from::text::bigint, xid_to::text::bigint, event_ids, event_hashes, code, code_version"

    private func checkpoints(_ rows: PostgresRowSequence) async throws -> [AuditCheckpoint] {
        var result: [AuditCheckpoint] = []
        for try await (seq, xidFrom, xidTo, ids, hashes, code, version) in rows.decode(
            (Int64, Int64, Int64, [Int64], ByteBuffer, ByteBuffer, Int32).self
        ) {
            result.append(AuditCheckpoint(
                seq: seq, xidFrom: xidFrom, xidTo: xidTo, eventIDs: ids, eventHashes: Array(hashes.readableBytesView),
                code: Array(code.readableBytesView), codeVersion: version
            ))
        }
        return result
    }

    private func events(_ rows: PostgresRowSequence) async throws -> [ChainedAuditEvent] {
        var result: [ChainedAuditEvent] = []
        for try await row in rows {
            let cells = row.makeRandomAccess()
            func cell<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T { try cells[index].decode(T.self) }
            let id = try cell(0, Int64.self)
            let code = try cell(12, ByteBuffer?.self)
            // An outcome edited to a value the table's check refuses cannot be stored, so this decodes.
            let record = AuditRecord(
                id: id, occurredAt: try cell(1, Date.self), actor: try cell(4, String.self), actorSpace: try cell(5, String?.self),
                action: try cell(6, String.self), resource: try cell(7, String.self), space: try cell(8, String?.self),
                requestID: try cell(9, String.self), outcome: try .stored(try cell(10, String.self), in: "audit event \(id)"),
                detail: try cell(11, String.self)
            )
            result.append(ChainedAuditEvent(
                record: record, occurredAtMicros: try cell(2, Int64.self), writerXID: try cell(3, Int64.self),
                code: code.map { Array($0.readableBytesView) }, codeVersion: try cell(13, Int32?.self)
            ))
        }
        return result
    }
}
