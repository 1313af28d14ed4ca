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
    /// The row's authentication code and the `integrity` key version that made it (nil on
    /// a row no Coffer wrote).
    public var mac: [UInt8]?
    public var macVersion: Int32?

    public init(id: String, name: String, space: String, role: String, secretHash: [UInt8], createdAt: Date = Date(), revokedAt: Date? = nil,
                mac: [UInt8]? = nil, macVersion: Int32? = nil) {
        self.id = id
        self.name = name
        self.space = space
        self.role = role
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.mac = mac
        self.macVersion = macVersion
    }
}

/// SQL for `api_keys`.
public struct APIKeyRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    private static let columns = "id, name, space, role, secret_hash, created_at, revoked_at, mac, mac_version"

    public func insert(_ key: APIKeyRecord, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO api_keys (id, name, space, role, secret_hash, mac, mac_version)
            VALUES (\(key.id), \(key.name), \(key.space), \(key.role), \(ByteBuffer(bytes: key.secretHash)),
                    \(key.mac.map { ByteBuffer(bytes: $0) }), \(key.macVersion))
            """,
            logger: logger
        )
    }

    public func find(id: String, on session: StoreSession) async throws -> APIKeyRecord? {
        try await records(session.query(
            "SELECT \(unescaped: Self.columns) FROM api_keys WHERE id = \(id)",
            logger: logger
        )).first
    }

    /// The unrevoked key with this id bound to one of `spaces` (any space when nil), locked
    /// for the rest of the transaction.
    public func findActiveForUpdate(id: String, spaces: [String]?, on session: StoreSession) async throws -> APIKeyRecord? {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns) FROM api_keys
            WHERE id = \(id) AND revoked_at IS NULL AND (\(spaces)::text[] IS NULL OR space = ANY(\(spaces)))
            FOR UPDATE
            """,
            logger: logger
        )).first
    }

    /// Keys whose code was made by `integrity` key version `macVersion` (all of them when
    /// nil, those with no code), locked for the rest of the transaction.
    public func keysAuthenticated(byVersion macVersion: Int32?, on session: StoreSession) async throws -> [APIKeyRecord] {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns) FROM api_keys
            WHERE (\(macVersion)::integer IS NULL AND mac IS NULL) OR mac_version = \(macVersion)
            ORDER BY id FOR UPDATE
            """,
            logger: logger
        ))
    }

    /// Stores a key's new authentication code.
    public func setAuthenticationCode(id: String, mac: [UInt8], macVersion: Int32, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE api_keys SET mac = \(ByteBuffer(bytes: mac)), mac_version = \(macVersion) WHERE id = \(id)", logger: logger
        )
    }

    /// The unrevoked key with this id whose secret hashes to `secretHash`, with the audit
    /// row `token.issue` written in the same statement (one round trip); nil (and nothing
    /// written) when there is none. The digests are compared by PostgreSQL: an early exit
    /// there tells nothing useful, since a caller chooses the secret, not its SHA-256.
    /// `auditCode` is the writer's code of the `token.issue` event (see `AuditChain` in CofferCore).
    public func authenticateForToken(
        id: String, secretHash: [UInt8], requestID: String, auditCode: (bytes: [UInt8], version: Int32)? = nil, on session: StoreSession
    ) async throws -> APIKeyRecord? {
        let found = try await session.closingIfReadOnly { () -> TokenIssueStatement.Row? in
            var found: TokenIssueStatement.Row?
            for try await row in try await session.execute(TokenIssueStatement(id: id, secretHash: secretHash, requestID: requestID, auditCode: auditCode)) {
                found = row
            }
            return found
        }
        // No token is signed before its audit row has committed.
        if found != nil { try await session.confirmCommitted() }
        return found.map { id, space, role, mac, macVersion in
            APIKeyRecord(id: id, name: "", space: space, role: role, secretHash: secretHash, mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion)
        }
    }

    /// All keys, newest first.
    public func list(on session: StoreSession) async throws -> [APIKeyRecord] {
        try await records(session.query(
            "SELECT \(unescaped: Self.columns) FROM api_keys ORDER BY created_at DESC, id",
            logger: logger
        ))
    }

    /// Keys bound to one of `spaces` (any key, whatever its space, when nil), newest first,
    /// after the key `after` in that order.
    public func list(spaces: [String]?, after: (Date, String)?, limit: Int, on session: StoreSession) async throws -> [APIKeyRecord] {
        try await records(session.query(
            """
            SELECT \(unescaped: Self.columns) FROM api_keys
            WHERE (\(spaces)::text[] IS NULL OR space = ANY(\(spaces)))
              AND (\(after?.0)::timestamptz IS NULL OR (created_at, id) < (\(after?.0), \(after?.1 ?? "")))
            ORDER BY created_at DESC, id DESC LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    /// Ids of keys revoked at or after `since` (all revoked keys when nil), and the
    /// database's clock now, to pass as the next `since`.
    public func revoked(since: Date?, on session: StoreSession) async throws -> (ids: [String], now: Date) {
        var ids: [String] = []
        for try await id in try await session.query(
            "SELECT id FROM api_keys WHERE revoked_at IS NOT NULL AND (\(since)::timestamptz IS NULL OR revoked_at >= \(since))",
            logger: logger
        ).decode(String.self) {
            ids.append(id)
        }
        let now = try await session.query("SELECT now()", logger: logger).collect().first?.decode(Date.self) ?? Date()
        return (ids, now)
    }

    /// Marks a key revoked with its new authentication code (nil keeps the old one).
    public func markRevoked(id: String, mac: [UInt8]?, macVersion: Int32?, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE api_keys SET revoked_at = clock_timestamp(),
                mac = coalesce(\(mac.map { ByteBuffer(bytes: $0) }), mac), mac_version = coalesce(\(macVersion), mac_version)
            WHERE id = \(id)
            """,
            logger: logger
        )
    }

    private func records(_ rows: PostgresRowSequence) async throws -> [APIKeyRecord] {
        var result: [APIKeyRecord] = []
        for try await (id, name, space, role, hash, createdAt, revokedAt, mac, macVersion) in rows.decode(
            (String, String, String, String, ByteBuffer, Date, Date?, ByteBuffer?, Int32?).self
        ) {
            result.append(APIKeyRecord(
                id: id, name: name, space: space, role: role, secretHash: Array(hash.readableBytesView),
                createdAt: createdAt, revokedAt: revokedAt, mac: mac.map { Array($0.readableBytesView) }, macVersion: macVersion
            ))
        }
        return result
    }
}

/// The statement behind ``APIKeyRepository/authenticateForToken(id:secretHash:requestID:on:)``.
struct TokenIssueStatement: PostgresPreparedStatement {
    static let name = "coffer_token_issue_v3"
    static let sql = """
        WITH key AS (
            SELECT id, space, role, mac, mac_version FROM api_keys WHERE id = $1 AND secret_hash = $2 AND revoked_at IS NULL
        ), event AS (
            INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
            SELECT id, space, 'token.issue', 'api_key:' || id, space, $3, 'success', '', $4, $5 FROM key
        )
        SELECT id, space, role, mac, mac_version FROM key
        """
    typealias Row = (String, String, String, ByteBuffer?, Int32?)

    var id: String
    var secretHash: [UInt8]
    var requestID: String
    var auditCode: (bytes: [UInt8], version: Int32)?

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(id)
        bindings.append(ByteBuffer(bytes: secretHash))
        bindings.append(requestID)
        bindings.append(auditCode.map { ByteBuffer(bytes: $0.bytes) })
        bindings.append(auditCode?.version)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
