import Foundation
import Logging
import PostgresNIO

/// A row of `kms_keys`: a named key of Coffer's KMS API (never its material).
public struct KMSKeyRecord: Sendable, Equatable {
    public var uuid: UUID
    public var name: String
    public var space: String
    public var algorithm: String
    public var description: String
    public var latestVersion: Int32
    public var minDecryptionVersion: Int32
    public var enabled: Bool
    public var createdBy: String
    public var createdAt: Date
    public var updatedAt: Date
    /// The row's authentication code and the `integrity` key version that made it.
    public var mac: [UInt8]?
    public var macVersion: Int32?

    public init(uuid: UUID = UUID(), name: String, space: String, algorithm: String, description: String, latestVersion: Int32 = 1,
                minDecryptionVersion: Int32 = 1, enabled: Bool = true, createdBy: String, createdAt: Date = Date(), updatedAt: Date = Date(),
                mac: [UInt8]? = nil, macVersion: Int32? = nil) {
        self.mac = mac
        self.macVersion = macVersion
        self.uuid = uuid
        self.name = name
        self.space = space
        self.algorithm = algorithm
        self.description = description
        self.latestVersion = latestVersion
        self.minDecryptionVersion = minDecryptionVersion
        self.enabled = enabled
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A row of `kms_key_versions`: one version's material, sealed under a key-encryption key.
public struct KMSKeyVersionRecord: Sendable, Equatable {
    public var keyID: UUID
    public var version: Int32
    public var kekVersion: Int32
    public var sealedKey: [UInt8]

    public init(keyID: UUID, version: Int32, kekVersion: Int32, sealedKey: [UInt8]) {
        self.keyID = keyID
        self.version = version
        self.kekVersion = kekVersion
        self.sealedKey = sealedKey
    }
}

/// SQL for `kms_keys` and `kms_key_versions`.
public struct KMSKeyRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    static let columns = """
        k.uuid, k.name, k.space, k.algorithm, k.description, k.latest_version, k.min_decryption_version, k.enabled,
        k.created_by, k.created_at, k.updated_at, k.mac, k.mac_version
        """
    typealias KeyRow = (UUID, String, String, String, String, Int32, Int32, Bool, String, Date, Date, ByteBuffer?, Int32?)

    static func record(_ row: KeyRow) -> KMSKeyRecord {
        KMSKeyRecord(uuid: row.0, name: row.1, space: row.2, algorithm: row.3, description: row.4, latestVersion: row.5,
                     minDecryptionVersion: row.6, enabled: row.7, createdBy: row.8, createdAt: row.9, updatedAt: row.10,
                     mac: row.11.map { Array($0.readableBytesView) }, macVersion: row.12)
    }

    /// Stores a new key with its first version.
    public func insert(_ key: KMSKeyRecord, firstVersion: KMSKeyVersionRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO kms_keys (uuid, name, space, algorithm, description, latest_version, min_decryption_version, enabled,
                                  created_by, created_at, updated_at, mac, mac_version)
            VALUES (\(key.uuid), \(key.name), \(key.space), \(key.algorithm), \(key.description), \(key.latestVersion),
                    \(key.minDecryptionVersion), \(key.enabled), \(key.createdBy), \(key.createdAt), \(key.updatedAt),
                    \(key.mac.map { ByteBuffer(bytes: $0) }), \(key.macVersion))
            """,
            logger: logger
        )
        try await insertVersion(firstVersion, on: session)
    }

    public func insertVersion(_ version: KMSKeyVersionRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO kms_key_versions (key_uuid, version, kek_version, sealed_key)
            VALUES (\(version.keyID), \(version.version), \(version.kekVersion), \(ByteBuffer(bytes: version.sealedKey)))
            """,
            logger: logger
        )
    }

    /// The key named `name` if it lies in `space` or below it, locked for this transaction.
    public func findForUpdate(name: String, reachFrom space: String, on session: StoreSession) async throws -> KMSKeyRecord? {
        let rows = try await session.query(
            """
            WITH RECURSIVE subtree(id) AS (
                SELECT id FROM spaces WHERE id = \(space)
                UNION
                SELECT spaces.id FROM spaces JOIN subtree ON spaces.parent = subtree.id
            )
            SELECT \(unescaped: Self.columns) FROM kms_keys k
            WHERE k.name = \(name) AND k.space IN (SELECT id FROM subtree)
            FOR UPDATE OF k
            """,
            logger: logger
        )
        for try await row in rows.decode(KeyRow.self) { return Self.record(row) }
        return nil
    }

    /// The key named `name` in reach of `space` with the material of `versions` (those
    /// that exist) and, if `latest`, of its latest version: one round trip, as a named
    /// prepared statement (every KMS operation runs it).
    public func findWithMaterial(
        name: String, reachFrom space: String, versions: [Int32], latest: Bool, on session: StoreSession
    ) async throws -> (KMSKeyRecord, [Int32: KMSKeyVersionRecord])? {
        var key: KMSKeyRecord?
        var material: [Int32: KMSKeyVersionRecord] = [:]
        for try await row in try await session.execute(
            KMSKeyWithMaterial(space: space, name: name, versions: versions, latest: latest), logger: logger
        ) {
            let record = Self.record((row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8, row.9, row.10, row.11, row.12))
            key = record
            if let version = row.13, let kekVersion = row.14, let sealed = row.15 {
                material[version] = KMSKeyVersionRecord(keyID: record.uuid, version: version, kekVersion: kekVersion,
                                                        sealedKey: Array(sealed.readableBytesView))
            }
        }
        return key.map { ($0, material) }
    }

    /// Keys in `spaces`, ordered by name, after the name `after` if given.
    public func list(spaces: [String], after: String?, limit: Int, on session: StoreSession) async throws -> [KMSKeyRecord] {
        var result: [KMSKeyRecord] = []
        for try await row in try await session.query(
            """
            SELECT \(unescaped: Self.columns) FROM kms_keys k
            WHERE k.space = ANY(\(spaces)) AND k.name > \(after ?? "")
            ORDER BY k.name LIMIT \(limit)
            """,
            logger: logger
        ).decode(KeyRow.self) {
            result.append(Self.record(row))
        }
        return result
    }

    /// Keys whose code `integrity` key version `macVersion` made (those with no code when
    /// nil), locked for the rest of the transaction.
    public func keysAuthenticated(byVersion macVersion: Int32?, on session: StoreSession) async throws -> [KMSKeyRecord] {
        var result: [KMSKeyRecord] = []
        for try await row in try await session.query(
            """
            SELECT \(unescaped: Self.columns) FROM kms_keys k
            WHERE (\(macVersion)::integer IS NULL AND k.mac IS NULL) OR k.mac_version = \(macVersion)
            ORDER BY k.uuid FOR UPDATE
            """,
            logger: logger
        ).decode(KeyRow.self) {
            result.append(Self.record(row))
        }
        return result
    }

    /// Saves description, latest and minimum versions, `enabled`, `updatedAt` and the code.
    public func update(_ key: KMSKeyRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE kms_keys SET description = \(key.description), latest_version = \(key.latestVersion),
                min_decryption_version = \(key.minDecryptionVersion), enabled = \(key.enabled), updated_at = \(key.updatedAt),
                mac = \(key.mac.map { ByteBuffer(bytes: $0) }), mac_version = \(key.macVersion)
            WHERE uuid = \(key.uuid)
            """,
            logger: logger
        )
    }

    /// Deletes a key and the material of every version. Returns the versions erased.
    public func delete(_ keyID: UUID, on session: StoreSession) async throws -> Int {
        let versions = try await session.query(
            "DELETE FROM kms_key_versions WHERE key_uuid = \(keyID) RETURNING version", logger: logger
        ).collect().count
        try await session.query("DELETE FROM kms_keys WHERE uuid = \(keyID)", logger: logger)
        return versions
    }

    /// Every version's material not sealed under key-encryption key `kekVersion`.
    public func versions(notSealedUnder kekVersion: Int32, on session: StoreSession) async throws -> [KMSKeyVersionRecord] {
        var result: [KMSKeyVersionRecord] = []
        for try await (keyID, version, kek, sealed) in try await session.query(
            "SELECT key_uuid, version, kek_version, sealed_key FROM kms_key_versions WHERE kek_version <> \(kekVersion) ORDER BY key_uuid, version",
            logger: logger
        ).decode((UUID, Int32, Int32, ByteBuffer).self) {
            result.append(KMSKeyVersionRecord(keyID: keyID, version: version, kekVersion: kek, sealedKey: Array(sealed.readableBytesView)))
        }
        return result
    }

    /// Replaces a version's sealed material (after rewrapping it under another key-encryption key).
    public func rewrap(_ version: KMSKeyVersionRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE kms_key_versions SET kek_version = \(version.kekVersion), sealed_key = \(ByteBuffer(bytes: version.sealedKey))
            WHERE key_uuid = \(version.keyID) AND version = \(version.version)
            """,
            logger: logger
        )
    }

    /// The key-encryption key versions that seal KMS key material (none before migration 4).
    public func keyEncryptionKeyVersions(on session: StoreSession) async throws -> Set<Int32> {
        let exists = try await session.query("SELECT to_regclass('kms_key_versions') IS NOT NULL", logger: logger)
            .collect().first?.decode(Bool.self) ?? false
        guard exists else { return [] }
        var result: Set<Int32> = []
        for try await version in try await session.query("SELECT DISTINCT kek_version FROM kms_key_versions", logger: logger).decode(Int32.self) {
            result.insert(version)
        }
        return result
    }

    /// How many KMS key versions key-encryption key `kekVersion` seals.
    public func countSealed(kekVersion: Int32, on session: StoreSession) async throws -> Int {
        try await session.query("SELECT count(*) FROM kms_key_versions WHERE kek_version = \(kekVersion)", logger: logger)
            .collect().first?.decode(Int.self) ?? 0
    }
}

/// The statement behind ``KMSKeyRepository/findWithMaterial(name:reachFrom:versions:latest:on:)``.
struct KMSKeyWithMaterial: PostgresPreparedStatement {
    static let name = "coffer_kms_key_with_material_v2"
    static let sql = SpaceReach.subtreeOfFirstParameter + """
        SELECT \(KMSKeyRepository.columns), v.version, v.kek_version, v.sealed_key
        FROM kms_keys k
        LEFT JOIN kms_key_versions v
          ON v.key_uuid = k.uuid AND (v.version = ANY($3) OR ($4 AND v.version = k.latest_version))
        WHERE k.name = $2 AND k.space IN (SELECT id FROM subtree)
        """
    typealias Row = (UUID, String, String, String, String, Int32, Int32, Bool, String, Date, Date, ByteBuffer?, Int32?, Int32?, Int32?, ByteBuffer?)

    var space: String
    var name: String
    var versions: [Int32]
    var latest: Bool

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(space)
        bindings.append(name)
        bindings.append(versions)
        bindings.append(latest)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
