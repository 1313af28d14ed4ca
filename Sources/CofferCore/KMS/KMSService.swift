import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Coffer as a KMS for applications: named keys in a space whose material is random,
/// versioned, sealed under the key-encryption key and never returned; encrypt, decrypt,
/// rewrap and data-key operations with a context bound as associated data. `admin` manages
/// keys; `write`, `admin` and `worker` use them; a key outside the caller's space subtree
/// does not exist (404). Every change and every operation is audited (key, versions,
/// operation, caller; never data).
public struct KMSService: Sendable {
    public static let maximumBatch = 1_000
    public static let maximumPlaintextBytes = 64 * 1024
    public static let maximumContextBytes = 8 * 1024

    let database: Database
    let keyring: Keyring
    let lifecycle: KeyLifecycle?
    let keys: KMSKeyRepository
    let keyLifecycle: KeyLifecycleRepository
    let owners: OwnerRepository
    let audit: AuditLog
    let access: AccessControl
    let logger: Logger

    /// Authenticates each key's row: one edited outside Coffer (its space, name, algorithm,
    /// versions or `enabled`) is treated as absent.
    let integrity: RowIntegrity
    /// Reach by authenticated space rows.
    let tree: SpaceTree

    public init(database: Database, keyring: Keyring, lifecycle: KeyLifecycle? = nil, audit: AuditLog? = nil, integrity: RowIntegrity? = nil,
                tree: SpaceTree? = nil, logger: Logger) {
        self.integrity = integrity ?? RowIntegrity(keyring: keyring, logger: logger)
        self.tree = tree ?? SpaceTree(integrity: self.integrity, logger: logger)
        self.database = database
        self.keyring = keyring
        self.lifecycle = lifecycle
        self.keys = KMSKeyRepository(logger: logger)
        self.keyLifecycle = KeyLifecycleRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.audit = audit ?? AuditLog(database: database, keyring: keyring, logger: logger)
        self.access = AccessControl(audit: self.audit)
        self.logger = logger
    }

    // MARK: Managing keys

    public func create(_ input: KMSKeyInput, by principal: Principal) async throws -> KMSKeyRecord {
        // The name is checked before a refusal is audited, so the event never carries
        // unchecked text; a refused event is filed under the caller's own space.
        try ConfigValidation.checkSlug(input.name, what: "a KMS key name")
        let space = input.space ?? principal.space
        let resource = Self.resource(input.name)
        try await access.require(principal, .admin, action: "kms_key.create", resource: resource, space: nil)
        try ConfigValidation.checkSlug(space, what: "a space id")
        guard let algorithm = KMSAlgorithm(rawValue: input.algorithm) else {
            throw CofferError.invalidAlgorithm("`algorithm` must be one of \(KMSAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try ConfigValidation.checkDescription(input.description)
        let (keys, tree, audit, keyring) = (self.keys, self.tree, self.audit, self.keyring)
        do {
            return try await withFreshKeys {
                let record = try self.integrity.seal(KMSKeyRecord(name: input.name, space: space, algorithm: algorithm.rawValue,
                                                                  description: input.description, createdBy: principal.apiKeyID))
                let (kekVersion, sealed) = try keyring.sealKMSKey(SymmetricKey(size: algorithm.keySize), keyID: record.uuid, version: 1)
                try await database.transaction { session in
                    let reach = try await tree.reach(of: principal.space, on: session)
                    guard reach.contains(space) else {
                        throw CofferError.unknownSpace("space `\(space)` does not exist")
                    }
                    try await self.confirmActiveKEK(kekVersion, on: session)
                    try await self.integrity.confirmActive(record.macVersion, on: session)
                    try await keys.insert(record, firstVersion: KMSKeyVersionRecord(keyID: record.uuid, version: 1, kekVersion: Int32(kekVersion), sealedKey: sealed),
                                          on: session)
                    try await audit.record("kms_key.create", resource: resource, space: space, by: principal,
                                           detail: "algorithm=\(algorithm.rawValue) version=1", on: session)
                }
                return record
            }
        } catch let error as StoreError where error.code == .conflict {
            throw CofferError.conflict("a KMS key named `\(input.name)` already exists")
        }
    }

    /// A key the caller reaches (metadata only: any role).
    public func key(name: String, by principal: Principal) async throws -> KMSKeyRecord {
        try principal.require(.metadata)
        let keys = self.keys
        let found = try await database.withSession { session in
            try await keys.findWithMaterial(name: name, reachFrom: principal.space, versions: [], latest: false, on: session)
        }
        guard let (key, _) = found, integrity.verify(key), try await tree.confirm(key.space, within: principal.space, using: database) else {
            throw Self.notFound(name)
        }
        return key
    }

    /// A page of the keys the caller reaches, ordered by name.
    public func list(limit: Int, cursor: String?, by principal: Principal) async throws -> Page<KMSKeyRecord> {
        try principal.require(.metadata)
        let after = try Pagination.key(of: cursor)
        let (keys, tree) = (self.keys, self.tree)
        let rows = try await database.withSession { session in
            let reach = try await tree.reach(of: principal.space, on: session)
            return try await keys.list(spaces: reach, after: after, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        let page = Page(rows: rows, limit: limit, key: { $0.name })
        return Page(items: page.items.filter { integrity.verify($0) }, nextCursor: page.nextCursor)
    }

    /// Changes the description, the minimum version that decrypts, or whether the key works.
    public func update(name: String, _ patch: KMSKeyPatch, by principal: Principal) async throws -> KMSKeyRecord {
        let resource = Self.resource(name)
        try await access.require(principal, .admin, action: "kms_key.update", resource: resource, space: nil)
        if let description = patch.description { try ConfigValidation.checkDescription(description) }
        let (keys, audit, integrity) = (self.keys, self.audit, self.integrity)
        return try await withFreshKeys { try await database.transaction { session in
            guard var key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: session), integrity.verify(key),
                      try await tree.confirm(key.space, within: principal.space, on: session) else {
                throw Self.notFound(name)
            }
            var changes: [String] = []
            if let minimum = patch.minDecryptionVersion {
                guard minimum >= 1, minimum <= Int(key.latestVersion) else {
                    throw CofferError.invalidMinDecryptionVersion("`min_decryption_version` must lie between 1 and the latest version, \(key.latestVersion)")
                }
                if Int32(minimum) != key.minDecryptionVersion { changes.append("min_decryption_version=\(key.minDecryptionVersion)->\(minimum)") }
                key.minDecryptionVersion = Int32(minimum)
            }
            if let enabled = patch.enabled {
                if enabled != key.enabled { changes.append("enabled=\(enabled)") }
                key.enabled = enabled
            }
            if let description = patch.description { key.description = description }
            key.updatedAt = Date()
            key = try integrity.seal(key)
            try await integrity.confirmActive(key.macVersion, on: session)
            try await keys.update(key, on: session)
            try await audit.record("kms_key.update", resource: resource, space: key.space, by: principal,
                                   detail: changes.joined(separator: " "), on: session)
            return key
        } }
    }

    /// A new version becomes the one that encrypts; older versions keep decrypting.
    public func rotate(name: String, by principal: Principal) async throws -> KMSKeyRecord {
        let resource = Self.resource(name)
        try await access.require(principal, .admin, action: "kms_key.rotate", resource: resource, space: nil)
        let (keys, audit, keyring, integrity) = (self.keys, self.audit, self.keyring, self.integrity)
        return try await withFreshKeys {
            try await database.transaction { session in
                guard var key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: session), integrity.verify(key),
                      try await tree.confirm(key.space, within: principal.space, on: session) else {
                    throw Self.notFound(name)
                }
                let algorithm = try KMSAlgorithm.stored(key.algorithm, in: "KMS key `\(key.name)`")
                let next = key.latestVersion + 1
                let (kekVersion, sealed) = try keyring.sealKMSKey(SymmetricKey(size: algorithm.keySize), keyID: key.uuid, version: UInt32(next))
                try await self.confirmActiveKEK(kekVersion, on: session)
                try await keys.insertVersion(KMSKeyVersionRecord(keyID: key.uuid, version: next, kekVersion: Int32(kekVersion), sealedKey: sealed), on: session)
                key.latestVersion = next
                key.updatedAt = Date()
                key = try integrity.seal(key)
                try await integrity.confirmActive(key.macVersion, on: session)
                try await keys.update(key, on: session)
                try await audit.record("kms_key.rotate", resource: resource, space: key.space, by: principal, detail: "version=\(next)", on: session)
                return key
            }
        }
    }

    /// Deletes a key and the material of every version: whatever it encrypted can never be
    /// decrypted again. `confirm` must repeat the key's name.
    public func delete(name: String, confirm: String, by principal: Principal) async throws {
        let resource = Self.resource(name)
        try await access.require(principal, .admin, action: "kms_key.delete", resource: resource, space: nil)
        guard confirm == name else {
            throw CofferError.confirmationRequired("deleting a KMS key destroys every version of its material and nothing it encrypted can be decrypted again; set `confirm` to the key's name")
        }
        let (keys, audit, integrity) = (self.keys, self.audit, self.integrity)
        let erased = try await database.transaction { session in
            guard let key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: session), integrity.verify(key),
                  try await tree.confirm(key.space, within: principal.space, on: session) else {
                throw Self.notFound(name)
            }
            let erased = try await keys.delete(key.uuid, on: session)
            try await audit.record("kms_key.delete", resource: resource, space: key.space, by: principal, detail: "versions_erased=\(erased)", on: session)
            return erased
        }
        logger.info("KMS key deleted; its material is erased", metadata: ["kms_key": "\(name)", "versions": "\(erased)"])
    }

    // MARK: Helpers

    static func resource(_ name: String) -> String { "kms_key:\(name)" }

    static func notFound(_ name: String) -> CofferError {
        CofferError.kmsKeyNotFound("KMS key `\(name)` not found")
    }

    /// Inside a write's transaction: the key-encryption key that sealed new material is
    /// still the active one (held against a rotation until commit); otherwise reload.
    func confirmActiveKEK(_ version: UInt32, on session: StoreSession) async throws {
        guard try await keyLifecycle.isActiveKeyEncryptionKey(version: Int32(version), on: session) else { throw StaleKeyring() }
    }

    /// Runs `body` again with freshly loaded keys when another process rotated the
    /// key-encryption key (a stale active key, or material under a key not loaded yet).
    func withFreshKeys<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await KeyLifecycle.withFreshKeys(lifecycle, body)
    }
}
