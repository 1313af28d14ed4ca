import Foundation
import Logging
import PostgresNIO

/// A row of `audit_events`. Never holds a value, a secret or a token.
public struct AuditRecord: Sendable, Equatable {
    public enum Outcome: String, Sendable, CaseIterable {
        case success, denied, failure
    }

    public var id: Int64
    public var occurredAt: Date
    /// The API key id of the caller, or `cli` for a command run by an operator.
    public var actor: String
    public var actorSpace: String?
    /// `<resource kind>.<verb>`, e.g. `config.put`, `token.issue`, `runtime_config.read`.
    public var action: String
    /// `stack:app`, `stack:app/config/DB_URL`, `space:team-a`, `api_key:ak_…`.
    public var resource: String
    /// The space the resource lives in; decides who may read the event.
    public var space: String?
    public var requestID: String
    public var outcome: Outcome
    /// Free text without values (e.g. `version=3`, `priority=0`).
    public var detail: String

    public init(id: Int64 = 0, occurredAt: Date = Date(), actor: String, actorSpace: String?, action: String, resource: String,
                space: String?, requestID: String, outcome: Outcome, detail: String = "") {
        self.id = id
        self.occurredAt = occurredAt
        self.actor = actor
        self.actorSpace = actorSpace
        self.action = action
        self.resource = resource
        self.space = space
        self.requestID = requestID
        self.outcome = outcome
        self.detail = detail
    }
}

/// What `GET /api/v1/audit-events` may filter on.
public struct AuditFilter: Sendable {
    public var spaces: [String]
    public var actor: String?
    public var action: String?
    /// A resource, or a prefix of one ending in `*` (`stack:app*`).
    public var resource: String?
    public var outcome: AuditRecord.Outcome?
    public var since: Date?
    public var until: Date?
    /// Only events with a smaller id (the cursor).
    public var before: Int64?

    public init(spaces: [String] = [], actor: String? = nil, action: String? = nil, resource: String? = nil,
                outcome: AuditRecord.Outcome? = nil, since: Date? = nil, until: Date? = nil, before: Int64? = nil) {
        self.spaces = spaces
        self.actor = actor
        self.action = action
        self.resource = resource
        self.outcome = outcome
        self.since = since
        self.until = until
        self.before = before
    }
}

/// SQL for `audit_events`.
public struct AuditRepository: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Stores an event with its writer's code (see `AuditChain` in CofferCore).
    public func insert(_ event: AuditRecord, code: (bytes: [UInt8], version: Int32)?, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
            VALUES (\(event.actor), \(event.actorSpace), \(event.action), \(event.resource), \(event.space),
                    \(event.requestID), \(event.outcome.rawValue), \(event.detail), \(code.map { ByteBuffer(bytes: $0.bytes) }), \(code?.version))
            """,
            logger: logger
        )
    }

    /// Events matching `filter`, newest first. An event of no space by no space's caller (a
    /// refused token request of an unknown caller) belongs to the root space.
    public func list(_ filter: AuditFilter, limit: Int, on session: StoreSession) async throws -> [AuditRecord] {
        var resourceExact: String?
        var resourcePrefix: String?
        if let resource = filter.resource {
            if resource.hasSuffix("*") { resourcePrefix = String(resource.dropLast()) } else { resourceExact = resource }
        }
        let rows = try await session.query(
            """
            SELECT id, occurred_at, actor, actor_space, action, resource, space, request_id, outcome, detail
            FROM audit_events
            WHERE (space = ANY(\(filter.spaces)) OR (space IS NULL AND actor_space = ANY(\(filter.spaces)))
                   OR (space IS NULL AND coalesce(actor_space, '') = '' AND 'root' = ANY(\(filter.spaces))))
              AND (\(filter.actor)::text IS NULL OR actor = \(filter.actor))
              AND (\(filter.action)::text IS NULL OR action = \(filter.action))
              AND (\(resourceExact)::text IS NULL OR resource = \(resourceExact))
              AND (\(resourcePrefix)::text IS NULL OR starts_with(resource, \(resourcePrefix)))
              AND (\(filter.outcome?.rawValue)::text IS NULL OR outcome = \(filter.outcome?.rawValue))
              AND (\(filter.since)::timestamptz IS NULL OR occurred_at >= \(filter.since))
              AND (\(filter.until)::timestamptz IS NULL OR occurred_at < \(filter.until))
              AND (\(filter.before)::bigint IS NULL OR id < \(filter.before))
            ORDER BY id DESC LIMIT \(limit)
            """,
            logger: logger
        )
        var result: [AuditRecord] = []
        for try await (id, occurredAt, actor, actorSpace, action, resource, space, requestID, outcome, detail) in rows.decode(
            (Int64, Date, String, String?, String, String, String?, String, String, String).self
        ) {
            result.append(AuditRecord(
                id: id, occurredAt: occurredAt, actor: actor, actorSpace: actorSpace, action: action, resource: resource,
                space: space, requestID: requestID, outcome: try .stored(outcome, in: "audit event \(id)"), detail: detail
            ))
        }
        return result
    }
}
