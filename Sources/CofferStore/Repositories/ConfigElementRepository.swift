import Foundation
import Logging
import PostgresNIO

/// A row of `config_elements` (the current value) or of `config_element_versions` (one
/// version): an environment variable or mounted file of a stack or context, its value
/// sealed under the `database` data key.
public struct ConfigElementRecord: Sendable, Equatable {
    public var ownerID: UUID
    public var configID: String
    public var type: String
    public var writeOnly: Bool
    public var sealedValue: [UInt8]
    public var dekVersion: Int32
    public var checksum: String
    public var description: String
    /// 1 for the first value, one more for every change.
    public var version: Int32
    /// The API key id (or `cli`) that wrote this version.
    public var author: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(ownerID: UUID, configID: String, type: String, writeOnly: Bool, sealedValue: [UInt8], dekVersion: Int32, checksum: String,
                description: String, version: Int32 = 1, author: String = "", createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.ownerID = ownerID
        self.configID = configID
        self.type = type
        self.writeOnly = writeOnly
        self.sealedValue = sealedValue
        self.dekVersion = dekVersion
        self.checksum = checksum
        self.description = description
        self.version = version
        self.author = author
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// SQL for `config_elements` and `config_element_versions`.
public struct ConfigElementRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    private static let columns = "owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, version, author, created_at, updated_at"

    /// Serialises writers of one element for the rest of the transaction, so versions
    /// stay contiguous.
    public func lockElement(ownerID: UUID, configID: String, on session: StoreSession) async throws {
        try await session.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(\(ownerID.uuidString + "/" + configID), 7102318))", logger: logger
        )
    }

    /// Inserts or replaces the current value. Returns true if it was created.
    @discardableResult
    public func upsert(_ element: ConfigElementRecord, on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            """
            INSERT INTO config_elements
                (owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, version, author, created_at, updated_at)
            VALUES (\(element.ownerID), \(element.configID), \(element.type), \(element.writeOnly),
                    \(ByteBuffer(bytes: element.sealedValue)), \(element.dekVersion), \(element.checksum),
                    \(element.description), \(element.version), \(element.author), \(element.createdAt), \(element.updatedAt))
            ON CONFLICT (owner_id, config_id) DO UPDATE SET
                type = EXCLUDED.type, write_only = EXCLUDED.write_only, sealed_value = EXCLUDED.sealed_value,
                dek_version = EXCLUDED.dek_version, checksum = EXCLUDED.checksum, description = EXCLUDED.description,
                version = EXCLUDED.version, author = EXCLUDED.author, updated_at = EXCLUDED.updated_at
            RETURNING (xmax = 0)
            """,
            logger: logger
        ).collect()
        return try rows.first?.decode(Bool.self) ?? false
    }

    /// Records one version in the history.
    public func insertVersion(_ element: ConfigElementRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO config_element_versions
                (owner_id, config_id, version, type, write_only, sealed_value, dek_version, checksum, description, author, created_at)
            VALUES (\(element.ownerID), \(element.configID), \(element.version), \(element.type), \(element.writeOnly),
                    \(ByteBuffer(bytes: element.sealedValue)), \(element.dekVersion), \(element.checksum),
                    \(element.description), \(element.author), \(element.updatedAt))
            """,
            logger: logger
        )
    }

    /// The current value of one element, locked for update when `lock` is set.
    public func find(ownerID: UUID, configID: String, lock: Bool = false, on session: StoreSession) async throws -> ConfigElementRecord? {
        let rows = lock
            ? try await session.query(
                "SELECT \(unescaped: Self.columns) FROM config_elements WHERE owner_id = \(ownerID) AND config_id = \(configID) FOR UPDATE",
                logger: logger)
            : try await session.query(
                "SELECT \(unescaped: Self.columns) FROM config_elements WHERE owner_id = \(ownerID) AND config_id = \(configID)",
                logger: logger)
        return try await records(rows).first
    }

    /// One round trip for a read of one element: the owner's UUID if a stack or context
    /// of this kind and id lies in `space` or below it (nil if not), and its element
    /// `configID` if it has one. A named prepared statement: the hottest read skips
    /// PostgreSQL's parse and plan on every call after a connection's first.
    public func findInReach(
        kind: String, ownerID: String, configID: String, reachFrom space: String, on session: StoreSession
    ) async throws -> (owner: OwnerRecord, element: ConfigElementRecord?)? {
        var found: ElementInReach.Row?
        for try await row in try await session.execute(
            ElementInReach(space: space, configID: configID, kind: kind, ownerID: ownerID), logger: logger
        ) {
            found = row
        }
        guard let (owner, foundID, type, writeOnly, sealed, dekVersion, checksum, description, version, author, createdAt, updatedAt,
                   ownerSpace, labels, mac, macVersion) = found else {
            return nil
        }
        // The owner's deciding fields and code (its name and times are not read).
        let record = OwnerRecord(uuid: owner, kind: try .stored(kind, in: "owner \(owner)"), id: ownerID, name: "", space: ownerSpace,
                                 labels: labels, description: "", mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion)
        guard foundID != nil, let type, let writeOnly, let sealed, let dekVersion, let checksum, let description, let version,
              let author, let createdAt, let updatedAt else {
            return (record, nil)
        }
        return (record, ConfigElementRecord(
            ownerID: owner, configID: configID, type: type, writeOnly: writeOnly, sealedValue: Array(sealed.readableBytesView),
            dekVersion: dekVersion, checksum: checksum, description: description, version: version, author: author,
            createdAt: createdAt, updatedAt: updatedAt
        ))
    }

    /// The highest version ever written for an element (it may have been deleted since), or 0.
    public func latestVersion(ownerID: UUID, configID: String, on session: StoreSession) async throws -> Int32 {
        let rows = try await session.query(
            "SELECT coalesce(max(version), 0) FROM config_element_versions WHERE owner_id = \(ownerID) AND config_id = \(configID)",
            logger: logger
        ).collect()
        return try rows.first?.decode(Int32.self) ?? 0
    }

    /// At most `limit` versions of an element, newest first, older than `before` if given,
    /// whose sealed values add up to at most `maxBytes` (the first always comes); `more`
    /// says whether another page follows. The statement itself is bounded: it reads
    /// `limit + 1` rows and fetches no value past the byte bound, nor any write-only one
    /// (whose ``ConfigElementRecord/sealedValue`` is empty).
    public func versions(
        ownerID: UUID, configID: String, before: Int32?, limit: Int, maxBytes: Int, on session: StoreSession
    ) async throws -> (rows: [ConfigElementRecord], more: Bool) {
        try await boundedPage(session.query(
            """
            SELECT owner_id, config_id, type, write_only, CASE WHEN write_only OR NOT fits THEN NULL ELSE sealed_value END,
                   dek_version, checksum, description, version, author, created_at, created_at, fits
            FROM (
                SELECT h.*, (row_number() OVER w = 1
                             OR sum(CASE WHEN h.write_only THEN 0 ELSE octet_length(h.sealed_value) END) OVER w <= \(maxBytes)) AS fits
                FROM config_element_versions h
                WHERE h.owner_id = \(ownerID) AND h.config_id = \(configID) AND h.version < \(before ?? Int32.max)
                WINDOW w AS (ORDER BY h.version DESC)
                ORDER BY h.version DESC LIMIT \(limit + 1)
            ) page
            ORDER BY version DESC
            """,
            logger: logger
        ), limit: limit)
    }

    /// At most `limit` current elements of an owner by config id, after `after` if given,
    /// bounded by `maxBytes` of sealed values as ``versions(ownerID:configID:before:limit:maxBytes:on:)``
    /// is; write-only values are not fetched.
    public func elements(
        ownerID: UUID, after: String?, limit: Int, maxBytes: Int, on session: StoreSession
    ) async throws -> (rows: [ConfigElementRecord], more: Bool) {
        try await boundedPage(session.query(
            """
            SELECT owner_id, config_id, type, write_only, CASE WHEN write_only OR NOT fits THEN NULL ELSE sealed_value END,
                   dek_version, checksum, description, version, author, created_at, updated_at, fits
            FROM (
                SELECT e.*, (row_number() OVER w = 1
                             OR sum(CASE WHEN e.write_only THEN 0 ELSE octet_length(e.sealed_value) END) OVER w <= \(maxBytes)) AS fits
                FROM config_elements e
                WHERE e.owner_id = \(ownerID) AND e.config_id > \(after ?? "")
                WINDOW w AS (ORDER BY e.config_id)
                ORDER BY e.config_id LIMIT \(limit + 1)
            ) page
            ORDER BY config_id
            """,
            logger: logger
        ), limit: limit)
    }

    /// The rows that fit, up to `limit`; more follow if any row was left out.
    private func boundedPage(_ rows: PostgresRowSequence, limit: Int) async throws -> (rows: [ConfigElementRecord], more: Bool) {
        var result: [ConfigElementRecord] = []
        var read = 0
        for try await row in rows {
            read += 1
            let (ownerID, configID, type, writeOnly, sealed, dekVersion, checksum, description, version, author, createdAt, updatedAt, fits) =
                try row.decode((UUID, String, String, Bool, ByteBuffer?, Int32, String, String, Int32, String, Date, Date, Bool).self)
            guard fits, result.count < limit, read == result.count + 1 else { continue }
            result.append(ConfigElementRecord(
                ownerID: ownerID, configID: configID, type: type, writeOnly: writeOnly,
                sealedValue: sealed.map { Array($0.readableBytesView) } ?? [], dekVersion: dekVersion, checksum: checksum,
                description: description, version: version, author: author, createdAt: createdAt, updatedAt: updatedAt
            ))
        }
        return (result, read > result.count)
    }

    public func version(ownerID: UUID, configID: String, version: Int32, on session: StoreSession) async throws -> ConfigElementRecord? {
        try await versionRecords(session.query(
            """
            SELECT owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, version, author, created_at, created_at
            FROM config_element_versions WHERE owner_id = \(ownerID) AND config_id = \(configID) AND version = \(version)
            """,
            logger: logger
        )).first
    }

    /// How many elements an owner holds.
    public func count(ownerID: UUID, on session: StoreSession) async throws -> Int {
        let rows = try await session.query("SELECT count(*) FROM config_elements WHERE owner_id = \(ownerID)", logger: logger).collect()
        return Int(try rows.first?.decode(Int64.self) ?? 0)
    }

    /// Serialises the creation of new elements of one owner (for the element bound); the
    /// same key as `coffer_put_config_element` takes.
    public func lockElementCount(ownerID: UUID, on session: StoreSession) async throws {
        try await session.query(
            "SELECT pg_advisory_xact_lock(hashtextextended(\(ownerID.uuidString + "/elements"), 7102318))", logger: logger
        )
    }

    /// Deletes the current value (the history stays). Returns false if it did not exist.
    public func delete(ownerID: UUID, configID: String, on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            "DELETE FROM config_elements WHERE owner_id = \(ownerID) AND config_id = \(configID) RETURNING config_id",
            logger: logger
        ).collect()
        return !rows.isEmpty
    }

    private func records(_ rows: PostgresRowSequence) async throws -> [ConfigElementRecord] {
        try await versionRecords(rows)
    }

    private func versionRecords(_ rows: PostgresRowSequence) async throws -> [ConfigElementRecord] {
        var result: [ConfigElementRecord] = []
        for try await row in rows {
            let (ownerID, configID, type, writeOnly, sealed, dekVersion, checksum, description, version, author, createdAt, updatedAt) =
                try row.decode((UUID, String, String, Bool, ByteBuffer, Int32, String, String, Int32, String, Date, Date).self)
            result.append(ConfigElementRecord(
                ownerID: ownerID, configID: configID, type: type, writeOnly: writeOnly,
                sealedValue: Array(sealed.readableBytesView), dekVersion: dekVersion, checksum: checksum,
                description: description, version: version, author: author, createdAt: createdAt, updatedAt: updatedAt
            ))
        }
        return result
    }
}

/// The statement behind ``ConfigElementRepository/findInReach(kind:ownerID:configID:reachFrom:on:)``.
struct ElementInReach: PostgresPreparedStatement {
    static let name = "coffer_element_in_reach_v3"
    static let sql = SpaceReach.subtreeOfFirstParameter + """
        SELECT o.uuid, e.config_id, e.type, e.write_only, e.sealed_value, e.dek_version, e.checksum, e.description,
               e.version, e.author, e.created_at, e.updated_at, o.space, o.labels, o.mac, o.mac_version
        FROM config_owners o
        LEFT JOIN config_elements e ON e.owner_id = o.uuid AND e.config_id = $2
        WHERE o.kind = $3 AND o.id = $4 AND o.space IN (SELECT id FROM subtree)
        """
    typealias Row = (UUID, String?, String?, Bool?, ByteBuffer?, Int32?, String?, String?, Int32?, String?, Date?, Date?, String, [String], ByteBuffer?, Int32?)

    var space: String
    var configID: String
    var kind: String
    var ownerID: String

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(space)
        bindings.append(configID)
        bindings.append(kind)
        bindings.append(ownerID)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
