import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Creates, checks, lists and revokes API keys. A key's secret is 256 random bits shown
/// once; only its SHA-256 is stored, and checks compare hashes in constant time. Each row
/// carries an authentication code (``RowIntegrity``): a row that does not verify (inserted
/// or edited outside Coffer) logs nobody in and is listed nowhere.
public struct APIKeyService: Sendable {
    /// A key as shown once at creation: the secret is not stored anywhere.
    public struct Created: Sendable {
        public let record: APIKeyRecord
        public let secret: String
    }

    private let database: Database
    private let repository: APIKeyRepository
    private let owners: OwnerRepository
    private let spaces: SpaceRepository
    private let audit: AuditLog
    private let access: AccessControl
    private let logger: Logger
    /// Bounds token requests per client address and per key id.
    private let throttle: TokenThrottle
    /// Revoked keys, refused by token verification on this replica at once.
    public let revocations: RevocationList

    private let integrity: RowIntegrity
    /// Reach by authenticated space rows.
    private let tree: SpaceTree
    /// Reloads the keyring when a write met an integrity key another replica retired; nil
    /// in tests of the service alone.
    private let lifecycle: KeyLifecycle?

    public init(
        database: Database, integrity: RowIntegrity, lifecycle: KeyLifecycle? = nil, revocations: RevocationList = RevocationList(),
        audit: AuditLog? = nil, tree: SpaceTree? = nil, throttle: TokenThrottle = TokenThrottle(limits: CofferLimits()), logger: Logger
    ) {
        self.integrity = integrity
        self.tree = tree ?? SpaceTree(integrity: integrity, logger: logger)
        self.lifecycle = lifecycle
        self.database = database
        self.repository = APIKeyRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.spaces = SpaceRepository(logger: logger)
        self.audit = audit ?? AuditLog(database: database, keyring: integrity.keyring, logger: logger)
        self.throttle = throttle
        self.access = AccessControl(audit: self.audit)
        self.revocations = revocations
        self.logger = logger
    }

    /// Creates a key bound to a space in the caller's reach (an operator at the command
    /// line reaches every space).
    public func create(name: String, space: String, role: Role, by principal: Principal = .commandLine) async throws -> Created {
        try await access.require(principal, .admin, action: "api_key.create", resource: "api_key:(new)", space: space)
        try await access.requireGrant(of: role, by: principal, action: "api_key.create", resource: "api_key:(new)", space: space)
        let name = try ConfigValidation.checkName(name, what: "an API key")
        let id = "ak_" + Hex.encode(Self.randomBytes(10))
        let secret = "cfs_" + Base64URL.encode(Self.randomBytes(32))
        let (repository, tree, spaces, audit, integrity) = (self.repository, self.tree, self.spaces, self.audit, self.integrity)
        let record = try await KeyLifecycle.withFreshKeys(lifecycle) {
            let record = try integrity.seal(APIKeyRecord(id: id, name: name, space: space, role: role.rawValue, secretHash: Self.hash(secret)))
            try await self.database.transaction { session in
                // Serialised with space moves and deletions (which take the same lock), so a
                // key can never be created into a space being deleted.
                try await spaces.lockTree(on: session)
                guard try await tree.reach(of: principal.space, on: session).contains(space) else {
                    throw CofferError.unknownSpace("space `\(space)` does not exist")
                }
                try await integrity.confirmActive(record.macVersion, on: session)
                try await repository.insert(record, on: session)
                try await audit.record("api_key.create", resource: "api_key:\(id)", space: space, by: principal, detail: "role=\(role.rawValue)", on: session)
            }
            return record
        }
        return Created(record: record, secret: secret)
    }

    /// The key with this id if `secret` is its secret and it is not revoked.
    /// - Throws: `unauthorized` otherwise, with one message for every cause.
    public func authenticate(id: String, secret: String) async throws -> APIKeyRecord {
        let repository = self.repository
        let record = try await database.withSession { try await repository.find(id: id, on: $0) }
        let presented = Self.hash(secret)
        // Compare even when the id is unknown, so timing does not tell ids apart.
        let expected = record?.secretHash ?? [UInt8](repeating: 0, count: presented.count)
        let matches = Self.constantTimeEquals(presented, expected)
        guard let record, matches, record.revokedAt == nil, integrity.verify(record) else {
            throw CofferError.invalidCredentials("the API key id or secret is wrong, or the key is revoked")
        }
        return record
    }

    /// Exchanges an API key for a token, audited as `token.issue` (or `denied`). The event
    /// is written before the token is signed: no token leaves without its record (and a
    /// signature that fails is recorded as a `failure` of the same action).
    /// A request over the throttle of ``TokenThrottle`` is refused before any database
    /// work, with `too_many_requests` and the seconds to wait; its refusal is audited
    /// (gathered with the ones that repeat it).
    public func issueToken(id: String, secret: String, address: String = "unknown", tokens: TokenService, requestID: String) async throws -> TokenService.Issued {
        let shownID = Self.isWellFormedID(id) ? id : "(malformed)"
        if let refusal = throttle.check(address: address, keyID: shownID) {
            let anonymous = Principal(apiKeyID: "anonymous", space: "", role: .read, tokenID: "", expiresAt: 0, requestID: requestID)
            await audit.recordDenied("token.issue", resource: "api_key:\(shownID)", space: nil, by: anonymous, detail: "throttled \(refusal.bound)")
            throw CofferError.tooManyRequests(
                "too many token requests; retry in \(refusal.retryAfter) s (limit \(refusal.bound))", retryAfter: refusal.retryAfter
            )
        }
        let repository = self.repository
        let secretHash = Self.hash(secret)
        let auditCode = audit.code(requestID: requestID, actor: id, action: "token.issue", resource: "api_key:\(id)")
        // One statement: the key's check and the audit row together.
        let key = try await database.withSession(retryingReadOnly: true) {
            try await repository.authenticateForToken(id: id, secretHash: secretHash, requestID: requestID, auditCode: auditCode, on: $0)
        }
        guard let key else {
            // An id that is not shaped like one is not recorded: it may be a pasted secret.
            let anonymous = Principal(apiKeyID: "anonymous", space: "", role: .read, tokenID: "", expiresAt: 0, requestID: requestID)
            await audit.recordDenied("token.issue", resource: "api_key:\(shownID)", space: nil, by: anonymous)
            throw CofferError.invalidCredentials("the API key id or secret is wrong, or the key is revoked")
        }
        guard integrity.verify(key) else {
            // The statement recorded the issue; say it did not happen, and why.
            let principal = Principal(apiKeyID: key.id, space: key.space, role: .read, tokenID: "", expiresAt: 0, requestID: requestID)
            await audit.recordFailure("token.issue", resource: "api_key:\(key.id)", space: key.space, by: principal, detail: "integrity check failed")
            throw CofferError.invalidCredentials("the API key id or secret is wrong, or the key is revoked")
        }
        guard let role = Role(rawValue: key.role) else { throw TokenService.unknownRole(key.id) }
        do {
            return try await tokens.issue(apiKeyID: key.id, space: key.space, role: role)
        } catch {
            // The event said the token was issued; say it was not.
            let principal = Principal(apiKeyID: key.id, space: key.space, role: role, tokenID: "", expiresAt: 0, requestID: requestID)
            await audit.recordFailure("token.issue", resource: "api_key:\(key.id)", space: key.space, by: principal, detail: "signing failed")
            guard let failure = error as? SigningFailed else { throw error }
            logger.error("could not sign a token", metadata: ["api_key": "\(key.id)", "error": "\(failure.underlying)"])
            throw SigningFailed.answer
        }
    }

    /// Keys bound to spaces in the caller's reach, newest first.
    public func list(limit: Int = 500, cursor: String? = nil, by principal: Principal = .commandLine) async throws -> Page<APIKeyRecord> {
        try await access.require(principal, .admin, action: "api_key.list", resource: "api_key:*", space: nil)
        let after: (Date, String)? = try Pagination.key(of: cursor) { text in
            let parts = text.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let seconds = Double(parts[0]) else { return nil }
            return (Date(timeIntervalSince1970: seconds), String(parts[1]))
        }
        let (repository, tree) = (self.repository, self.tree)
        let rows = try await database.withSession { [after] session in
            // The command line sees every key, a key bound to a space that is gone included.
            let reach = principal.isCommandLine ? nil : try await tree.reach(of: principal.space, on: session)
            return try await repository.list(spaces: reach, after: after, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        // A row that does not verify is not shown; the cursor still moves past it.
        let page = Page(rows: rows, limit: limit, key: { "\($0.createdAt.timeIntervalSince1970) \($0.id)" })
        return Page(items: page.items.filter { integrity.verify($0) }, nextCursor: page.nextCursor)
    }

    /// Revokes a key in the caller's reach; its tokens stop working on this replica at
    /// once and on the others within ``RevocationList/pollInterval``.
    public func revoke(id: String, by principal: Principal = .commandLine) async throws {
        try await access.require(principal, .admin, action: "api_key.revoke", resource: "api_key:\(id)", space: nil)
        let (repository, tree, audit, integrity) = (self.repository, self.tree, self.audit, self.integrity)
        let revoked = try await KeyLifecycle.withFreshKeys(lifecycle) { try await self.database.transaction { session -> Bool in
            let reach = principal.isCommandLine ? nil : try await tree.reach(of: principal.space, on: session)
            guard var key = try await repository.findActiveForUpdate(id: id, spaces: reach, on: session) else { return false }
            // Revoking is always safe; a row that did not verify keeps its bad code, so it
            // stays refused rather than being vouched for now.
            let authentic = integrity.verify(key)
            key.revokedAt = Date()
            let sealed = authentic ? try integrity.seal(key) : key
            if authentic { try await integrity.confirmActive(sealed.macVersion, on: session) }
            try await repository.markRevoked(id: id, mac: authentic ? sealed.mac : nil, macVersion: authentic ? sealed.macVersion : nil, on: session)
            try await audit.record("api_key.revoke", resource: "api_key:\(id)", space: key.space, by: principal, on: session)
            return true
        } }
        guard revoked else { throw CofferError.notFound("no active API key has id \(id)") }
        revocations.insert(id)
    }

    static func isWellFormedID(_ id: String) -> Bool {
        id.utf8.count == 23 && id.hasPrefix("ak_") && id.utf8.dropFirst(3).allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }

    static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { SystemRandomNumberGenerator.fill($0) }
        return bytes
    }
}

extension SystemRandomNumberGenerator {
    /// Fills a buffer from the system's cryptographically secure generator.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        while offset < buffer.count {
            var word = generator.next()
            let count = Swift.min(8, buffer.count - offset)
            withUnsafeBytes(of: &word) { bytes in
                buffer.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            offset += count
        }
    }
}
