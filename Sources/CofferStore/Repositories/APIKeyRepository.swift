import Foundation
import Logging
import PostgresNIO

/// A row of `api_keys`. Only a hash of the secret is stored.
public struct APIKeyRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var space: String
    public var role: String
    public var secretHash: [UInt8]
    public var createdAt: Date
    public var revokedAt: Date?

    public init(id: String, name: String, space: String, role: String, secretHash: [UInt8], createdAt: Date = Date(), revokedAt: Date? = nil) {
        self.id = id
        self.name = name
        self.space = space
        self.role = role
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
    }
}

/// SQL for `api_keys`.
public struct APIKeyRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func insert(_ key: APIKeyRecord, on connection: PostgresConnection) async throws {
        try await connection.query(
            """
            INSERT INTO api_keys (id, name, space, role, secret_hash)
            VALUES (\(key.id), \(key.name), \(key.space), \(key.role), \(ByteBuffer(bytes: key.secretHash)))
            """,
            logger: logger
        )
    }

    public func find(id: String, on connection: PostgresConnection) async throws -> APIKeyRecord? {
        try await records(connection.query(
            "SELECT id, name, space, role, secret_hash, created_at, revoked_at FROM api_keys WHERE id = \(id)",
            logger: logger
        )).first
    }

    /// All keys, newest first.
    public func list(on connection: PostgresConnection) async throws -> [APIKeyRecord] {
        try await records(connection.query(
            "SELECT id, name, space, role, secret_hash, created_at, revoked_at FROM api_keys ORDER BY created_at DESC, id",
            logger: logger
        ))
    }

    /// Marks a key revoked. Returns false if no unrevoked key has this id.
    public func revoke(id: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query(
            "UPDATE api_keys SET revoked_at = now() WHERE id = \(id) AND revoked_at IS NULL RETURNING id",
            logger: logger
        ).collect()
        return !rows.isEmpty
    }

    private func records(_ rows: PostgresRowSequence) async throws -> [APIKeyRecord] {
        var result: [APIKeyRecord] = []
        for try await (id, name, space, role, hash, createdAt, revokedAt) in rows.decode(
            (String, String, String, String, ByteBuffer, Date, Date?).self
        ) {
            result.append(APIKeyRecord(
                id: id, name: name, space: space, role: role, secretHash: Array(hash.readableBytesView),
                createdAt: createdAt, revokedAt: revokedAt
            ))
        }
        return result
    }
}
