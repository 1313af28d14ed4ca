import Foundation
import Logging
import PostgresNIO

/// A row of `key_encryption_keys`.
public struct KeyEncryptionKeyRecord: Sendable, Equatable {
    public var version: Int32
    public var rootType: String
    public var rootKeyID: String
    public var wrappedKey: [UInt8]?
    public var state: KeyState
    public var createdAt: Date
}

/// A row of `data_encryption_keys`.
public struct DataKeyRecord: Sendable, Equatable {
    public var purpose: String
    public var version: Int32
    public var kekVersion: Int32
    public var sealedKey: [UInt8]?
    public var state: KeyState
    public var createdAt: Date
}

/// SQL for the key tables.
public struct KeyRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// True once the schema that holds keys exists.
    public func keyTablesExist(on session: StoreSession) async throws -> Bool {
        try await session.query(
            "SELECT to_regclass('key_encryption_keys') IS NOT NULL", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
    }

    /// Every key-encryption key, oldest first.
    public func keyEncryptionKeys(on session: StoreSession) async throws -> [KeyEncryptionKeyRecord] {
        var result: [KeyEncryptionKeyRecord] = []
        let rows = try await session.query(
            "SELECT version, root_type, root_key_id, wrapped_key, state, created_at FROM key_encryption_keys ORDER BY version",
            logger: logger
        )
        for try await (version, rootType, rootKeyID, wrapped, state, createdAt) in rows.decode(
            (Int32, String, String, ByteBuffer?, String, Date).self
        ) {
            result.append(KeyEncryptionKeyRecord(
                version: version, rootType: rootType, rootKeyID: rootKeyID,
                wrappedKey: wrapped.map { Array($0.readableBytesView) },
                state: try .stored(state, in: "key-encryption key v\(version)"), createdAt: createdAt
            ))
        }
        return result
    }

    /// Stores a new key-encryption key.
    public func insertKeyEncryptionKey(
        version: Int32, rootType: String, rootKeyID: String, wrappedKey: [UInt8], state: KeyState,
        on session: StoreSession
    ) async throws {
        try await session.query(
            """
            INSERT INTO key_encryption_keys (version, root_type, root_key_id, wrapped_key, state)
            VALUES (\(version), \(rootType), \(rootKeyID), \(ByteBuffer(bytes: wrappedKey)), \(state.rawValue))
            """,
            logger: logger
        )
    }

    /// Every data key, by purpose and version.
    public func dataKeys(on session: StoreSession) async throws -> [DataKeyRecord] {
        var result: [DataKeyRecord] = []
        let rows = try await session.query(
            "SELECT purpose, version, kek_version, sealed_key, state, created_at FROM data_encryption_keys ORDER BY purpose, version",
            logger: logger
        )
        for try await (purpose, version, kekVersion, sealed, state, createdAt) in rows.decode(
            (String, Int32, Int32, ByteBuffer?, String, Date).self
        ) {
            result.append(DataKeyRecord(
                purpose: purpose, version: version, kekVersion: kekVersion,
                sealedKey: sealed.map { Array($0.readableBytesView) },
                state: try .stored(state, in: "data key \(purpose) v\(version)"), createdAt: createdAt
            ))
        }
        return result
    }

    /// Stores a new data key sealed under key-encryption key `kekVersion`.
    public func insertDataKey(
        purpose: String, version: Int32, kekVersion: Int32, sealedKey: [UInt8], state: KeyState,
        on session: StoreSession
    ) async throws {
        try await session.query(
            """
            INSERT INTO data_encryption_keys (purpose, version, kek_version, sealed_key, state)
            VALUES (\(purpose), \(version), \(kekVersion), \(ByteBuffer(bytes: sealedKey)), \(state.rawValue))
            """,
            logger: logger
        )
    }
}
