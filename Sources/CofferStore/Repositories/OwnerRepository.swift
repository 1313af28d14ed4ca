import Foundation
import Logging
import PostgresNIO

/// Which kind of config owner a row of `config_owners` is.
public enum OwnerKind: String, Sendable, CaseIterable {
    case stack
    case context
}

/// A stack or a context: a row of `config_owners`.
public struct OwnerRecord: Sendable, Equatable {
    public var uuid: UUID
    public var kind: OwnerKind
    public var id: String
    public var name: String
    public var space: String
    public var labels: [String]
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    /// The authentication code over uuid, kind, id, space and labels, and the `integrity`
    /// key version that made it.
    public var mac: [UInt8]?
    public var macVersion: Int32?

    public init(uuid: UUID = UUID(), kind: OwnerKind, id: String, name: String, space: String, labels: [String], description: String, createdAt: Date = Date(), updatedAt: Date = Date(),
                mac: [UInt8]? = nil, macVersion: Int32? = nil) {
        self.uuid = uuid
        self.kind = kind
        self.id = id
        self.name = name
        self.space = space
        self.labels = labels
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.mac = mac
        self.macVersion = macVersion
    }
}

/// SQL for stacks and contexts. Every read takes the spaces the caller can reach, so a
/// row outside them is indistinguishable from a missing one.
public struct OwnerRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// The ids of `space` and all its descendants; empty if it does not exist.
    public func spaceSubtree(of space: String, on session: StoreSession) async throws -> [String] {
        var result: [String] = []
        for try await id in try await session.query(
            """
            WITH RECURSIVE subtree(id) AS (
                SELECT id FROM spaces WHERE id = \(space)
                UNION
                SELECT spaces.id FROM spaces JOIN subtree ON spaces.parent = subtree.id
            )
            SELECT id FROM subtree
            """,
            logger: logger
        ).decode(String.self) {
            result.append(id)
        }
        return result
    }

    /// Inserts an owner. Throws `conflict` if the id is taken for this kind.
    public func insert(_ owner: OwnerRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO config_owners (uuid, kind, id, name, space, labels, description, created_at, updated_at, mac, mac_version)
            VALUES (\(owner.uuid), \(owner.kind.rawValue), \(owner.id), \(owner.name), \(owner.space),
                    \(owner.labels), \(owner.description), \(owner.createdAt), \(owner.updatedAt),
                    \(owner.mac.map { ByteBuffer(bytes: $0) }), \(owner.macVersion))
            """,
            logger: logger
        )
    }

    /// The owner of this kind and id, if it lies in `space` or below it: the reach and the
    /// lookup in one round trip, as a named prepared statement (every owner route runs it).
    public func find(kind: OwnerKind, id: String, reachFrom space: String, on session: StoreSession) async throws -> OwnerRecord? {
        var found: OwnerRecord?
        for try await (uuid, kind, id, name, space, labels, description, createdAt, updatedAt, mac, macVersion) in try await session.execute(
            OwnerInReach(space: space, kind: kind.rawValue, id: id), logger: logger
        ) {
            found = OwnerRecord(
                uuid: uuid, kind: try .stored(kind, in: "owner \(uuid)"), id: id, name: name, space: space,
                labels: labels, description: description, createdAt: createdAt, updatedAt: updatedAt,
                mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion
            )
        }
        return found
    }

    /// Owners of a kind in `spaces`, ordered by id, after the id `after` if given.
    public func list(kind: OwnerKind, spaces: [String], after: String?, limit: Int, on session: StoreSession) async throws -> [OwnerRecord] {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns)
            FROM config_owners
            WHERE kind = \(kind.rawValue) AND space = ANY(\(spaces)) AND id > \(after ?? "")
            ORDER BY id LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    /// Saves name, space, labels, description and `updatedAt` of an owner.
    public func update(_ owner: OwnerRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE config_owners SET name = \(owner.name), space = \(owner.space), labels = \(owner.labels),
                description = \(owner.description), updated_at = \(owner.updatedAt),
                mac = \(owner.mac.map { ByteBuffer(bytes: $0) }), mac_version = \(owner.macVersion)
            WHERE uuid = \(owner.uuid)
            """,
            logger: logger
        )
    }

    /// Contexts in `spaces` carrying one of `labels`, except `excluding`, ordered by id.
    public func contexts(inSpaces spaces: [String], withAnyLabel labels: [String], excluding: [UUID], on session: StoreSession) async throws -> [OwnerRecord] {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns)
            FROM config_owners
            WHERE kind = 'context' AND space = ANY(\(spaces)) AND labels && \(labels) AND NOT (uuid = ANY(\(excluding)))
            ORDER BY id
            """,
            logger: logger
        ))
    }

    /// The stacks a context is explicitly attached to.
    public func stacksAttached(to context: UUID, on session: StoreSession) async throws -> [OwnerRecord] {
        try await records(session.query(
            """
            SELECT o.uuid, o.kind, o.id, o.name, o.space, o.labels, o.description, o.created_at, o.updated_at, o.mac, o.mac_version
            FROM stack_context_attachments a JOIN config_owners o ON o.uuid = a.stack_uuid
            WHERE a.context_uuid = \(context) ORDER BY o.id
            """,
            logger: logger
        ))
    }

    /// Deletes an owner with its elements and attachments. Returns false if none matched.
    public func delete(kind: OwnerKind, id: String, spaces: [String], on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            "DELETE FROM config_owners WHERE kind = \(kind.rawValue) AND id = \(id) AND space = ANY(\(spaces)) RETURNING uuid",
            logger: logger
        ).collect()
        return !rows.isEmpty
    }

    private func records(_ rows: PostgresRowSequence) async throws -> [OwnerRecord] {
        var result: [OwnerRecord] = []
        for try await (uuid, kind, id, name, space, labels, description, createdAt, updatedAt, mac, macVersion) in rows.decode(
            (UUID, String, String, String, String, [String], String, Date, Date, ByteBuffer?, Int32?).self
        ) {
            result.append(OwnerRecord(
                uuid: uuid, kind: try .stored(kind, in: "owner \(uuid)"), id: id, name: name, space: space,
                labels: labels, description: description, createdAt: createdAt, updatedAt: updatedAt,
                mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion
            ))
        }
        return result
    }

    private static let columns = "uuid, kind, id, name, space, labels, description, created_at, updated_at, mac, mac_version"

    /// Owners whose code `integrity` key version `macVersion` made (every owner without a
    /// code when nil).
    public func ownersAuthenticated(byVersion macVersion: Int32?, on session: StoreSession) async throws -> [OwnerRecord] {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns) FROM config_owners
            WHERE (\(macVersion)::integer IS NULL AND mac IS NULL) OR mac_version = \(macVersion)
            """,
            logger: logger
        ))
    }

    public func setAuthenticationCode(uuid: UUID, mac: [UInt8], macVersion: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE config_owners SET mac = \(ByteBuffer(bytes: mac)), mac_version = \(macVersion) WHERE uuid = \(uuid)", logger: logger
        )
    }
}

/// The statement behind ``OwnerRepository/find(kind:id:reachFrom:on:)``.
struct OwnerInReach: PostgresPreparedStatement {
    static let name = "coffer_owner_in_reach_v2"
    static let sql = SpaceReach.subtreeOfFirstParameter + """
        SELECT uuid, kind, id, name, space, labels, description, created_at, updated_at, mac, mac_version
        FROM config_owners WHERE kind = $2 AND id = $3 AND space IN (SELECT id FROM subtree)
        """
    typealias Row = (UUID, String, String, String, String, [String], String, Date, Date, ByteBuffer?, Int32?)

    var space: String
    var kind: String
    var id: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(space)
        bindings.append(kind)
        bindings.append(id)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}

/// The caller's reach as SQL: `subtree(id)` holds the space `$1` and every space below it.
/// Prepared statements start with it, so each takes the caller's space as `$1`.
enum SpaceReach {
    static let subtreeOfFirstParameter = """
        WITH RECURSIVE subtree(id) AS (
            SELECT id FROM spaces WHERE id = $1
            UNION
            SELECT spaces.id FROM spaces JOIN subtree ON spaces.parent = subtree.id
        )

        """
}
