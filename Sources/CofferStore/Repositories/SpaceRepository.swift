import Foundation
import Logging
import PostgresNIO

/// A row of `spaces`: a node of the tree under `root`.
public struct SpaceRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    /// Nil only for `root`.
    public var parent: String?
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    /// The authentication code over id and parent, and the `integrity` key version that made it.
    public var mac: [UInt8]?
    public var macVersion: Int32?

    public init(id: String, name: String, parent: String?, description: String, createdAt: Date = Date(), updatedAt: Date = Date(),
                mac: [UInt8]? = nil, macVersion: Int32? = nil) {
        self.id = id
        self.name = name
        self.parent = parent
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.mac = mac
        self.macVersion = macVersion
    }

    /// The space every tree hangs from; it has no parent and no code.
    public static let root = "root"
}

/// A space's place in the tree as stored, with its authentication code.
public struct StoredSpaceLink: Sendable, Equatable {
    public var id: String
    public var parent: String?
    public var mac: [UInt8]?
    public var macVersion: Int32?
}

/// What still lives in a space, and so blocks deleting it.
public struct SpaceContents: Sendable, Equatable {
    public var children: Int
    public var stacks: Int
    public var contexts: Int
    public var liveAPIKeys: Int
    public var kmsKeys: Int = 0

    public var isEmpty: Bool { children == 0 && stacks == 0 && contexts == 0 && liveAPIKeys == 0 && kmsKeys == 0 }
}

/// SQL for `spaces`.
public struct SpaceRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// `space` and its ancestors up to `root`, nearest first; empty if it does not exist.
    public func ancestry(of space: String, on session: StoreSession) async throws -> [String] {
        var result: [String] = []
        for try await id in try await session.query(
            """
            WITH RECURSIVE up(id, parent, depth) AS (
                SELECT id, parent, 0 FROM spaces WHERE id = \(space)
                UNION ALL
                SELECT spaces.id, spaces.parent, up.depth + 1 FROM spaces JOIN up ON spaces.id = up.parent
                WHERE up.depth < 1000
            )
            SELECT id FROM up ORDER BY depth
            """,
            logger: logger
        ).decode(String.self) {
            result.append(id)
        }
        return result
    }

    /// Every space's id, parent and code: the whole tree, as the caller verifies it.
    public func links(on session: StoreSession) async throws -> [StoredSpaceLink] {
        var result: [StoredSpaceLink] = []
        for try await (id, parent, mac, macVersion) in try await session.query(
            "SELECT id, parent, mac, mac_version FROM spaces", logger: logger
        ).decode((String, String?, ByteBuffer?, Int32?).self) {
            result.append(StoredSpaceLink(id: id, parent: parent, mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion))
        }
        return result
    }

    /// Spaces whose code `integrity` key version `macVersion` made (every space but `root`
    /// without a code when nil).
    public func spacesAuthenticated(byVersion macVersion: Int32?, on session: StoreSession) async throws -> [StoredSpaceLink] {
        var result: [StoredSpaceLink] = []
        for try await (id, parent, mac, version) in try await session.query(
            """
            SELECT id, parent, mac, mac_version FROM spaces
            WHERE id <> \(SpaceRecord.root) AND ((\(macVersion)::integer IS NULL AND mac IS NULL) OR mac_version = \(macVersion))
            """,
            logger: logger
        ).decode((String, String?, ByteBuffer?, Int32?).self) {
            result.append(StoredSpaceLink(id: id, parent: parent, mac: mac.map { Array($0.readableBytesView) }, macVersion: version))
        }
        return result
    }

    public func setAuthenticationCode(id: String, mac: [UInt8], macVersion: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE spaces SET mac = \(ByteBuffer(bytes: mac)), mac_version = \(macVersion) WHERE id = \(id)", logger: logger
        )
    }

    public func find(id: String, on session: StoreSession) async throws -> SpaceRecord? {
        try await records(session.query(
            "SELECT id, name, parent, description, created_at, updated_at FROM spaces WHERE id = \(id)",
            logger: logger
        )).first
    }

    /// Spaces among `ids`, ordered by id, after `after`.
    public func list(ids: [String], after: String?, limit: Int, on session: StoreSession) async throws -> [SpaceRecord] {
        try await records(session.query(
            """
            SELECT id, name, parent, description, created_at, updated_at FROM spaces
            WHERE id = ANY(\(ids)) AND id > \(after ?? "") ORDER BY id LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    /// Inserts a space. Throws `conflict` if the id is taken.
    public func insert(_ space: SpaceRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO spaces (id, name, parent, description, created_at, updated_at, mac, mac_version)
            VALUES (\(space.id), \(space.name), \(space.parent), \(space.description), \(space.createdAt), \(space.updatedAt),
                    \(space.mac.map { ByteBuffer(bytes: $0) }), \(space.macVersion))
            """,
            logger: logger
        )
    }

    public func update(_ space: SpaceRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE spaces SET name = \(space.name), parent = \(space.parent), description = \(space.description),
                updated_at = \(space.updatedAt), mac = \(space.mac.map { ByteBuffer(bytes: $0) }), mac_version = \(space.macVersion)
            WHERE id = \(space.id)
            """,
            logger: logger
        )
    }

    public func contents(of space: String, on session: StoreSession) async throws -> SpaceContents {
        let row = try await session.query(
            """
            SELECT (SELECT count(*) FROM spaces WHERE parent = \(space)),
                   (SELECT count(*) FROM config_owners WHERE space = \(space) AND kind = 'stack'),
                   (SELECT count(*) FROM config_owners WHERE space = \(space) AND kind = 'context'),
                   (SELECT count(*) FROM api_keys WHERE space = \(space) AND revoked_at IS NULL),
                   (SELECT count(*) FROM kms_keys WHERE space = \(space))
            """,
            logger: logger
        ).collect().first
        let (children, stacks, contexts, keys, kmsKeys) = try row?.decode((Int, Int, Int, Int, Int).self) ?? (0, 0, 0, 0, 0)
        return SpaceContents(children: children, stacks: stacks, contexts: contexts, liveAPIKeys: keys, kmsKeys: kmsKeys)
    }

    public func delete(id: String, on session: StoreSession) async throws -> Bool {
        !(try await session.query("DELETE FROM spaces WHERE id = \(id) RETURNING id", logger: logger).collect().isEmpty)
    }

    /// Locks the space rows against concurrent moves and deletes for this transaction.
    /// The transaction advisory lock that serialises changes to the space tree.
    public static let treeLockKey: Int64 = 7102318001

    public func lockTree(on session: StoreSession) async throws {
        try await session.query("SELECT pg_advisory_xact_lock(\(Self.treeLockKey))", logger: logger)
    }

    private func records(_ rows: PostgresRowSequence) async throws -> [SpaceRecord] {
        var result: [SpaceRecord] = []
        for try await (id, name, parent, description, createdAt, updatedAt) in rows.decode(
            (String, String, String?, String, Date, Date).self
        ) {
            result.append(SpaceRecord(id: id, name: name, parent: parent, description: description, createdAt: createdAt, updatedAt: updatedAt))
        }
        return result
    }
}
