import CofferCrypto
import Foundation
import Logging
import PostgresNIO

/// A sealed value to re-encrypt: a current element (`version` nil) or a history version,
/// with the fields its sealing binds (``place``).
public struct SealedValueRow: Sendable, Equatable {
    public var ownerID: UUID
    public var configID: String
    /// The history version; nil for a current value.
    public var version: Int32?
    public var sealedValue: [UInt8]
    public var type: String
    public var writeOnly: Bool
    /// The element version the value was written as (a current value's `version` column).
    public var elementVersion: Int32

    /// What the value's sealing binds it to.
    public var place: ConfigValuePlace {
        ConfigValuePlace(ownerID: ownerID, configID: configID, type: type, writeOnly: writeOnly, version: elementVersion)
    }
}

/// SQL for key rotation, destruction jobs and root changes.
public struct KeyLifecycleRepository: Sendable {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    // MARK: Generation

    /// The key generation: it changes whenever keys change.
    /// Serialises key changes across processes until the transaction ends.
    public func lockKeyChanges(on session: StoreSession) async throws {
        try await session.query("SELECT pg_advisory_xact_lock(\(Self.keyChangesLock))", logger: logger)
    }

    /// The transaction-level advisory lock of key changes (rotations, destruction, root migration).
    static let keyChangesLock: Int64 = 7_102_318_003

    public func generation(on session: StoreSession) async throws -> Int64 {
        try await session.query("SELECT generation FROM key_generation WHERE id = 1", logger: logger)
            .collect().first?.decode(Int64.self) ?? 0
    }

    public func bumpGeneration(on session: StoreSession) async throws {
        try await session.query(
            "UPDATE key_generation SET generation = generation + 1, changed_at = now() WHERE id = 1", logger: logger
        )
    }

    // MARK: Keys

    public func setKeyEncryptionKeyState(version: Int32, state: KeyState, on session: StoreSession) async throws {
        try await session.query("UPDATE key_encryption_keys SET state = \(state.rawValue) WHERE version = \(version)", logger: logger)
    }

    /// Records a new wrapping of a key-encryption key (root key migration).
    public func rewrapKeyEncryptionKey(version: Int32, rootType: String, rootKeyID: String, wrappedKey: [UInt8], on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE key_encryption_keys SET root_type = \(rootType), root_key_id = \(rootKeyID), wrapped_key = \(ByteBuffer(bytes: wrappedKey))
            WHERE version = \(version)
            """,
            logger: logger
        )
    }

    /// Erases the material of key-encryption keys no data key or KMS key version needs any more.
    /// Returns the versions erased.
    public func eraseUnusedKeyEncryptionKeys(on session: StoreSession) async throws -> [Int32] {
        var erased: [Int32] = []
        for try await version in try await session.query(
            """
            UPDATE key_encryption_keys k SET wrapped_key = NULL, state = 'destroyed'
            WHERE k.state = 'retired'
              AND NOT EXISTS (SELECT 1 FROM data_encryption_keys d WHERE d.kek_version = k.version AND d.sealed_key IS NOT NULL)
              AND NOT EXISTS (SELECT 1 FROM kms_key_versions m WHERE m.kek_version = k.version)
            RETURNING k.version
            """,
            logger: logger
        ).decode(Int32.self) {
            erased.append(version)
        }
        return erased
    }

    public func setDataKeyState(purpose: String, version: Int32, state: KeyState, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE data_encryption_keys SET state = \(state.rawValue) WHERE purpose = \(purpose) AND version = \(version)", logger: logger
        )
    }

    public func rewrapDataKey(purpose: String, version: Int32, kekVersion: Int32, sealedKey: [UInt8], on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE data_encryption_keys SET kek_version = \(kekVersion), sealed_key = \(ByteBuffer(bytes: sealedKey))
            WHERE purpose = \(purpose) AND version = \(version)
            """,
            logger: logger
        )
    }

    /// Erases a data key's material: state `destroyed`, sealed key deleted.
    public func eraseDataKey(purpose: String, version: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE data_encryption_keys SET sealed_key = NULL, state = 'destroyed' WHERE purpose = \(purpose) AND version = \(version)",
            logger: logger
        )
    }

    /// Whether key-encryption key `version` is the active one, holding its row against a
    /// concurrent rotation (which retires it, and may erase it) until this transaction ends.
    public func isActiveKeyEncryptionKey(version: Int32, on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            "SELECT state FROM key_encryption_keys WHERE version = \(version) FOR SHARE", logger: logger
        ).collect()
        return try rows.first?.decode(String.self) == KeyState.active.rawValue
    }

    /// True if this data key version is the active one (locked against rotation until the
    /// transaction ends, so a write sealed under it cannot race a rotation or destruction).
    public func isActiveDataKey(purpose: String, version: Int32, on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            "SELECT state FROM data_encryption_keys WHERE purpose = \(purpose) AND version = \(version) FOR SHARE",
            logger: logger
        ).collect()
        return try rows.first?.decode(String.self) == KeyState.active.rawValue
    }

    /// How many current values and history versions each `database` data key version seals.
    public func valueCounts(on session: StoreSession) async throws -> [Int32: Int64] {
        var counts: [Int32: Int64] = [:]
        for try await (version, count) in try await session.query(
            """
            SELECT dek_version, sum(n)::bigint FROM (
                SELECT dek_version, count(*) AS n FROM config_elements GROUP BY dek_version
                UNION ALL
                SELECT dek_version, count(*) AS n FROM config_element_versions GROUP BY dek_version
            ) AS counted GROUP BY dek_version
            """,
            logger: logger
        ).decode((Int32, Int64).self) {
            counts[version] = count
        }
        return counts
    }

    /// Current values and history versions still sealed under `dekVersion`.
    public func countSealed(dekVersion: Int32, on session: StoreSession) async throws -> Int64 {
        try await session.query(
            """
            SELECT (SELECT count(*) FROM config_elements WHERE dek_version = \(dekVersion))
                 + (SELECT count(*) FROM config_element_versions WHERE dek_version = \(dekVersion))
            """,
            logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    /// Up to `limit` current values sealed under `dekVersion`, locked (skipping rows other
    /// transactions hold) until the transaction ends.
    public func lockCurrentValues(dekVersion: Int32, limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        try await currentValues(where: "dek_version = \(dekVersion)", limit: limit, on: session)
    }

    /// Up to `limit` current values still in sealed format 1, locked like ``lockCurrentValues(dekVersion:limit:on:)``.
    public func lockFormatV1CurrentValues(limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        try await currentValues(where: "get_byte(sealed_value, 0) = 1", limit: limit, on: session)
    }

    /// Up to `limit` history versions still in sealed format 1, locked like ``lockCurrentValues(dekVersion:limit:on:)``.
    public func lockFormatV1HistoryValues(limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        try await historyValues(where: "get_byte(sealed_value, 0) = 1", limit: limit, on: session)
    }

    /// Values and history versions still in sealed format 1.
    public func countFormatV1(on session: StoreSession) async throws -> Int64 {
        try await session.query(
            """
            SELECT (SELECT count(*) FROM config_elements WHERE get_byte(sealed_value, 0) = 1)
                 + (SELECT count(*) FROM config_element_versions WHERE get_byte(sealed_value, 0) = 1)
            """,
            logger: logger
        ).collect().first?.decode(Int64.self) ?? 0
    }

    /// `condition` is one of this file's constant SQL conditions, never caller input.
    private func currentValues(where condition: String, limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        var rows: [SealedValueRow] = []
        for try await (owner, configID, sealed, type, writeOnly, version) in try await session.query(
            """
            SELECT owner_id, config_id, sealed_value, type, write_only, version FROM config_elements
            WHERE \(unescaped: condition) LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """,
            logger: logger
        ).decode((UUID, String, ByteBuffer, String, Bool, Int32).self) {
            rows.append(SealedValueRow(ownerID: owner, configID: configID, version: nil, sealedValue: Array(sealed.readableBytesView),
                                       type: type, writeOnly: writeOnly, elementVersion: version))
        }
        return rows
    }

    private func historyValues(where condition: String, limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        var rows: [SealedValueRow] = []
        for try await (owner, configID, version, sealed, type, writeOnly) in try await session.query(
            """
            SELECT owner_id, config_id, version, sealed_value, type, write_only FROM config_element_versions
            WHERE \(unescaped: condition) LIMIT \(limit) FOR UPDATE SKIP LOCKED
            """,
            logger: logger
        ).decode((UUID, String, Int32, ByteBuffer, String, Bool).self) {
            rows.append(SealedValueRow(ownerID: owner, configID: configID, version: version, sealedValue: Array(sealed.readableBytesView),
                                       type: type, writeOnly: writeOnly, elementVersion: version))
        }
        return rows
    }

    /// Up to `limit` history versions sealed under `dekVersion`, locked like ``lockCurrentValues``.
    public func lockHistoryValues(dekVersion: Int32, limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        try await historyValues(where: "dek_version = \(dekVersion)", limit: limit, on: session)
    }

    /// Stores a re-encrypted value.
    public func replaceSealed(_ row: SealedValueRow, sealedValue: [UInt8], dekVersion: Int32, on session: StoreSession) async throws {
        if let version = row.version {
            try await session.query(
                """
                UPDATE config_element_versions SET sealed_value = \(ByteBuffer(bytes: sealedValue)), dek_version = \(dekVersion)
                WHERE owner_id = \(row.ownerID) AND config_id = \(row.configID) AND version = \(version)
                """,
                logger: logger
            )
        } else {
            try await session.query(
                """
                UPDATE config_elements SET sealed_value = \(ByteBuffer(bytes: sealedValue)), dek_version = \(dekVersion)
                WHERE owner_id = \(row.ownerID) AND config_id = \(row.configID)
                """,
                logger: logger
            )
        }
    }

    /// Blocks writers of values until the transaction ends, for the final check of a job.
    public func lockValueTables(on session: StoreSession) async throws {
        try await session.query("LOCK TABLE config_elements, config_element_versions IN SHARE ROW EXCLUSIVE MODE", logger: logger)
    }

    /// A sample of current values with the owner they belong to, for root migration checks.
    public func sampleValues(limit: Int, on session: StoreSession) async throws -> [SealedValueRow] {
        var rows: [SealedValueRow] = []
        for try await (owner, configID, sealed, type, writeOnly, version) in try await session.query(
            "SELECT owner_id, config_id, sealed_value, type, write_only, version FROM config_elements ORDER BY random() LIMIT \(limit)",
            logger: logger
        ).decode((UUID, String, ByteBuffer, String, Bool, Int32).self) {
            rows.append(SealedValueRow(ownerID: owner, configID: configID, version: nil, sealedValue: Array(sealed.readableBytesView),
                                       type: type, writeOnly: writeOnly, elementVersion: version))
        }
        return rows
    }
}
