import Foundation

/// One key version as `coffer keys list` and `GET /api/v1/keys` show it.
public struct KeyVersionView: Sendable, Equatable {
    /// `kek-v2`, `database-v3`, `audit-v1`: what `destroy` takes.
    public var id: String
    /// `kek`, `database` or `audit`.
    public var purpose: String
    public var version: Int
    public var state: KeyState
    public var createdAt: Date
    /// For a data key: the key-encryption key version that seals it.
    public var kekVersion: Int?
    /// For a data key: current values and history versions it still seals.
    public var values: Int64?
    /// For a key-encryption key: `rsa:<fingerprint>` or `kms:<arn>`.
    public var root: String?
}

/// What a rotation did.
public struct RotationResult: Sendable, Equatable {
    public var kekVersion: Int
    public var dataKeyVersions: [String: Int]
    public var rewrapped: Int
    public var erasedKEKs: [Int]
}

/// What a root key migration did.
public struct RootMigrationResult: Sendable, Equatable {
    public var rewrapped: [Int]
    public var alreadyMigrated: [Int]
    public var dataKeysChecked: Int
    public var valuesChecked: Int
}
