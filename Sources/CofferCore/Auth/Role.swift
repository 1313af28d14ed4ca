/// A role granted to an API key on one space and its descendants (CONTRACT §3).
/// `read` < `write` < `admin`; `worker` stands apart: it reads runtime config (decrypted
/// values, for runners) and metadata, and nothing else. `admin` does not imply `worker`.
public enum Role: String, Sendable, Codable, CaseIterable {
    case read, write, admin, worker

    /// What a route asks of the caller.
    public enum Requirement: Sendable {
        /// Stack and context metadata: read, write, admin or worker.
        case metadata
        /// Config elements (values of non-write-only elements): read and above.
        case read
        /// Changes: write and above.
        case write
        /// Spaces, API keys, keys: admin.
        case admin
        /// Decrypted runtime config: worker only.
        case worker
        /// Encrypting and decrypting with named KMS keys: write, admin and worker.
        case useKeys
    }

    /// Whether this role meets a requirement.
    public func satisfies(_ requirement: Requirement) -> Bool {
        switch (requirement, self) {
        case (.metadata, _): return true
        case (.read, .read), (.read, .write), (.read, .admin): return true
        case (.write, .write), (.write, .admin): return true
        case (.admin, .admin): return true
        case (.worker, .worker): return true
        case (.useKeys, .write), (.useKeys, .admin), (.useKeys, .worker): return true
        default: return false
        }
    }
}

/// The authenticated caller of a request, taken from a verified token.
public struct Principal: Sendable, Equatable {
    /// The API key the token was issued to.
    public let apiKeyID: String
    /// The space the key is bound to; the caller reaches it and its descendants.
    public let space: String
    public let role: Role
    /// The token's `jti`.
    public let tokenID: String
    /// The token's `exp`, seconds since 1970.
    public let expiresAt: Int64
    /// The id of the request being served, for the audit trail.
    public var requestID: String

    public init(apiKeyID: String, space: String, role: Role, tokenID: String, expiresAt: Int64, requestID: String = "") {
        self.apiKeyID = apiKeyID
        self.space = space
        self.role = role
        self.tokenID = tokenID
        self.expiresAt = expiresAt
        self.requestID = requestID
    }

    /// An operator at the command line: `admin` on `root`, audited as `cli`.
    public static let commandLine = Principal(apiKeyID: "cli", space: "root", role: .admin, tokenID: "", expiresAt: .max)

    /// The operator at the command line (no token is ever issued without a `jti`).
    public var isCommandLine: Bool { self == .commandLine }

    /// Coffer's own background work (automatic rotation, destruction jobs), audited as `system`.
    public static let system = Principal(apiKeyID: "system", space: "root", role: .admin, tokenID: "", expiresAt: .max)

    /// Throws `forbidden` unless the role meets the requirement.
    public func require(_ requirement: Role.Requirement) throws {
        guard role.satisfies(requirement) else {
            throw CofferError.forbidden("the \(role.rawValue) role of API key \(apiKeyID) does not allow this")
        }
    }
}
