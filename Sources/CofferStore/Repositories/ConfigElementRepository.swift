import Foundation
import Logging
import PostgresNIO

/// A row of `config_elements`: one environment variable or mounted file of a stack or
/// context, its value sealed under the `database` data key.
public struct ConfigElementRecord: Sendable, Equatable {
    public var ownerID: UUID
    public var configID: String
    public var type: String
    public var writeOnly: Bool
    public var sealedValue: [UInt8]
    public var dekVersion: Int32
    public var checksum: String
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(ownerID: UUID, configID: String, type: String, writeOnly: Bool, sealedValue: [UInt8], dekVersion: Int32, checksum: String, description: String, createdAt: Date = Date(), updatedAt: Date = Date()) {
        self.ownerID = ownerID
        self.configID = configID
        self.type = type
        self.writeOnly = writeOnly
        self.sealedValue = sealedValue
        self.dekVersion = dekVersion
        self.checksum = checksum
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// SQL for `config_elements`.
public struct ConfigElementRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Inserts or replaces an element. Returns true if it was created.
    @discardableResult
    public func upsert(_ element: ConfigElementRecord, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            """
            INSERT INTO config_elements
                (owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, created_at, updated_at)
            VALUES (\(element.ownerID), \(element.configID), \(element.type), \(element.writeOnly),
                    \(ByteBuffer(bytes: element.sealedValue)), \(element.dekVersion), \(element.checksum),
                    \(element.description), \(element.createdAt), \(element.updatedAt))
            ON CONFLICT (owner_id, config_id) DO UPDATE SET
                type = EXCLUDED.type, write_only = EXCLUDED.write_only, sealed_value = EXCLUDED.sealed_value,
                dek_version = EXCLUDED.dek_version, checksum = EXCLUDED.checksum,
                description = EXCLUDED.description, updated_at = EXCLUDED.updated_at
            RETURNING (xmax = 0)
            """,
            logger: logger
        ).collect()
        return try rows.first?.decode(Bool.self) ?? false
    }

    /// The elements of the given owners, ordered by owner and config id.
    public func elements(of owners: [UUID], on connection: PostgresConnection) async throws -> [ConfigElementRecord] {
        var result: [ConfigElementRecord] = []
        let rows = try await connection.query(
            """
            SELECT owner_id, config_id, type, write_only, sealed_value, dek_version, checksum, description, created_at, updated_at
            FROM config_elements WHERE owner_id = ANY(\(owners)) ORDER BY owner_id, config_id
            """,
            logger: logger
        )
        for try await (ownerID, configID, type, writeOnly, sealed, dekVersion, checksum, description, createdAt, updatedAt) in rows.decode(
            (UUID, String, String, Bool, ByteBuffer, Int32, String, String, Date, Date).self
        ) {
            result.append(ConfigElementRecord(
                ownerID: ownerID, configID: configID, type: type, writeOnly: writeOnly,
                sealedValue: Array(sealed.readableBytesView), dekVersion: dekVersion, checksum: checksum,
                description: description, createdAt: createdAt, updatedAt: updatedAt
            ))
        }
        return result
    }

    /// Deletes one element. Returns false if it did not exist.
    public func delete(ownerID: UUID, configID: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "DELETE FROM config_elements WHERE owner_id = \(ownerID) AND config_id = \(configID) RETURNING config_id",
            logger: logger
        ).collect()
        return !rows.isEmpty
    }
}
