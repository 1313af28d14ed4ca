import Foundation
import Logging
import PostgresNIO

/// An audit event with what makes it tamper-evident: the code its writer gave it (over who
/// did what) and, once chained, its place in the chain and the chain's code at it.
public struct ChainedAuditEvent: Sendable, Equatable {
    public var record: AuditRecord
    /// `occurred_at` in whole microseconds since 1970, exactly as stored.
    public var occurredAtMicros: Int64
    public var code: [UInt8]?
    public var codeVersion: Int32?
    /// Position in the chain (1, 2, …); nil until the chainer reaches the event.
    public var seq: Int64?
    public var chain: [UInt8]?
    public var chainVersion: Int32?
}

/// A chain position and code the chainer gives an event.
public struct AuditChainLink: Sendable, Equatable {
    public var id: Int64
    public var seq: Int64
    public var chain: [UInt8]
    public var chainVersion: Int32

    public init(id: Int64, seq: Int64, chain: [UInt8], chainVersion: Int32) {
        self.id = id
        self.seq = seq
        self.chain = chain
        self.chainVersion = chainVersion
    }
}

/// SQL for the audit chain (migration 0009): events are written in parallel with a code of
/// their own; one process at a time later gives them consecutive chain positions, in the
/// order of their ids, once every transaction that could still add an earlier id has ended.
extension AuditRepository {
    static let chainColumns = """
        id, occurred_at, floor(extract(epoch FROM occurred_at) * 1000000)::bigint, actor, actor_space, action, resource,
        space, request_id, outcome, detail, mac, mac_version, seq, chain, chain_version
        """

    /// Takes the chainer's lock for the current transaction if no other process holds it.
    public func tryLockChain(on session: StoreSession) async throws -> Bool {
        try await session.query("SELECT pg_try_advisory_xact_lock(710233)", logger: logger).collect().first?.decode(Bool.self) ?? false
    }

    /// The last chained event's position and chain code, nil when none is chained.
    public func chainHead(on session: StoreSession) async throws -> (seq: Int64, chain: [UInt8])? {
        for try await (seq, chain) in try await session.query(
            "SELECT seq, chain FROM audit_events WHERE seq IS NOT NULL ORDER BY seq DESC LIMIT 1", logger: logger
        ).decode((Int64, ByteBuffer?).self) {
            return (seq, chain.map { Array($0.readableBytesView) } ?? [])
        }
        return nil
    }

    /// Up to `limit` events not chained yet whose transactions have all ended (no event
    /// with a smaller id can still appear), by id.
    public func chainableEvents(limit: Int, on session: StoreSession) async throws -> [ChainedAuditEvent] {
        try await chained(session.query(
            """
            SELECT \(unescaped: Self.chainColumns) FROM audit_events
            WHERE seq IS NULL AND writer_xid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY id LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    /// Gives events their chain positions and codes.
    public func chain(_ links: [AuditChainLink], on session: StoreSession) async throws {
        guard !links.isEmpty else { return }
        try await session.query(
            """
            UPDATE audit_events e SET seq = l.seq, chain = l.chain, chain_version = l.chain_version
            FROM unnest(\(links.map(\.id)), \(links.map(\.seq)), \(links.map { ByteBuffer(bytes: $0.chain) }), \(links.map(\.chainVersion)))
                 AS l(id, seq, chain, chain_version)
            WHERE e.id = l.id
            """,
            logger: logger
        )
    }

    /// Up to `limit` chained events after position `seq`, in chain order.
    public func chainedEvents(after seq: Int64, limit: Int, on session: StoreSession) async throws -> [ChainedAuditEvent] {
        try await chained(session.query(
            "SELECT \(unescaped: Self.chainColumns) FROM audit_events WHERE seq > \(seq) ORDER BY seq LIMIT \(limit)",
            logger: logger
        ))
    }

    /// Up to `limit` events not chained yet with an id above `id`, by id.
    public func unchainedEvents(after id: Int64, limit: Int, on session: StoreSession) async throws -> [ChainedAuditEvent] {
        try await chained(session.query(
            "SELECT \(unescaped: Self.chainColumns) FROM audit_events WHERE seq IS NULL AND id > \(id) ORDER BY id LIMIT \(limit)",
            logger: logger
        ))
    }

    /// Gives an event written before events carried codes (the upgrade) its code.
    public func setCode(eventID: Int64, code: [UInt8], version: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE audit_events SET mac = \(ByteBuffer(bytes: code)), mac_version = \(version) WHERE id = \(eventID)", logger: logger
        )
    }

    /// Events whose code or chain code a version of the audit key made.
    public func countEvents(authenticatedBy version: Int32, on session: StoreSession) async throws -> Int64 {
        try await session.query(
            "SELECT count(*) FROM audit_events WHERE mac_version = \(version) OR chain_version = \(version)", logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    private func chained(_ rows: PostgresRowSequence) async throws -> [ChainedAuditEvent] {
        var result: [ChainedAuditEvent] = []
        for try await row in rows {
            let cells = row.makeRandomAccess()
            func cell<T: PostgresDecodable>(_ index: Int, _ type: T.Type) throws -> T { try cells[index].decode(T.self) }
            let id = try cell(0, Int64.self)
            let outcome = try cell(9, String.self)
            let code = try cell(11, ByteBuffer?.self)
            let chain = try cell(14, ByteBuffer?.self)
            // An outcome edited to a value the table's check refuses cannot be stored, so this decodes.
            let record = AuditRecord(
                id: id, occurredAt: try cell(1, Date.self), actor: try cell(3, String.self), actorSpace: try cell(4, String?.self),
                action: try cell(5, String.self), resource: try cell(6, String.self), space: try cell(7, String?.self),
                requestID: try cell(8, String.self), outcome: try .stored(outcome, in: "audit event \(id)"), detail: try cell(10, String.self)
            )
            result.append(ChainedAuditEvent(
                record: record, occurredAtMicros: try cell(2, Int64.self), code: code.map { Array($0.readableBytesView) },
                codeVersion: try cell(12, Int32?.self), seq: try cell(13, Int64?.self), chain: chain.map { Array($0.readableBytesView) },
                chainVersion: try cell(15, Int32?.self)
            ))
        }
        return result
    }
}
