import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// The algorithms of named KMS keys.
public enum KMSAlgorithm: String, Sendable, CaseIterable {
    case aes256GCM = "aes-256-gcm"
    case aes128GCM = "aes-128-gcm"

    var keySize: SymmetricKeySize { self == .aes256GCM ? .bits256 : .bits128 }
}

/// The operations of Coffer's KMS API.
public enum KMSOperation: String, Sendable, CaseIterable {
    case encrypt, decrypt, rewrap, datakey
}

/// What a caller sends to create a named key.
public struct KMSKeyInput: Sendable {
    public var name: String
    public var algorithm: String
    public var description: String
    /// Nil: the caller's own space.
    public var space: String?

    public init(name: String, algorithm: String = KMSAlgorithm.aes256GCM.rawValue, description: String = "", space: String? = nil) {
        self.name = name
        self.algorithm = algorithm
        self.description = description
        self.space = space
    }
}

/// A change to a named key; nil fields stay as they are.
public struct KMSKeyPatch: Sendable {
    public var description: String?
    public var minDecryptionVersion: Int?
    public var enabled: Bool?

    public init(description: String? = nil, minDecryptionVersion: Int? = nil, enabled: Bool? = nil) {
        self.description = description
        self.minDecryptionVersion = minDecryptionVersion
        self.enabled = enabled
    }
}

/// One item of an operation, as the caller sent it (base64 and ciphertext text).
public struct KMSItem: Sendable {
    public var plaintext: String?
    public var ciphertext: String?
    public var context: String?

    public init(plaintext: String? = nil, ciphertext: String? = nil, context: String? = nil) {
        self.plaintext = plaintext
        self.ciphertext = ciphertext
        self.context = context
    }
}

/// What one item came to: a ciphertext and/or a plaintext under a key version, or an error.
public struct KMSItemOutcome: Sendable {
    public var ciphertext: String?
    public var plaintext: [UInt8]?
    public var keyVersion: Int?
    public var error: CofferError?

    static func failed(_ error: CofferError) -> KMSItemOutcome { KMSItemOutcome(error: error) }
}

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
    let logger: Logger

    public init(database: Database, keyring: Keyring, lifecycle: KeyLifecycle? = nil, logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.lifecycle = lifecycle
        self.keys = KMSKeyRepository(logger: logger)
        self.keyLifecycle = KeyLifecycleRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.audit = AuditLog(database: database, logger: logger)
        self.logger = logger
    }

    // MARK: Managing keys

    public func create(_ input: KMSKeyInput, by principal: Principal) async throws -> KMSKeyRecord {
        // The name is checked before a refusal is audited, so the event never carries
        // unchecked text; a refused event is filed under the caller's own space.
        try ConfigValidation.checkSlug(input.name, what: "a KMS key name")
        let space = input.space ?? principal.space
        let resource = Self.resource(input.name)
        try await audit.authorize(principal, .admin, action: "kms_key.create", resource: resource, space: nil)
        try ConfigValidation.checkSlug(space, what: "a space id")
        guard let algorithm = KMSAlgorithm(rawValue: input.algorithm) else {
            throw CofferError.invalidInput("`algorithm` must be one of \(KMSAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))", code: "invalid_algorithm")
        }
        try ConfigValidation.checkDescription(input.description)
        let (keys, owners, audit, keyring) = (self.keys, self.owners, self.audit, self.keyring)
        do {
            return try await withFreshKeys {
                let record = KMSKeyRecord(name: input.name, space: space, algorithm: algorithm.rawValue, description: input.description,
                                          createdBy: principal.apiKeyID)
                let (kekVersion, sealed) = try keyring.sealKMSKey(SymmetricKey(size: algorithm.keySize), keyID: record.uuid, version: 1)
                try await database.transaction { connection in
                    let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
                    guard reach.contains(space) else {
                        throw CofferError.unprocessable("space `\(space)` does not exist", code: "unknown_space")
                    }
                    try await self.confirmActiveKEK(kekVersion, on: connection)
                    try await keys.insert(record, firstVersion: KMSKeyVersionRecord(keyID: record.uuid, version: 1, kekVersion: Int32(kekVersion), sealedKey: sealed),
                                          on: connection)
                    try await audit.record("kms_key.create", resource: resource, space: space, by: principal,
                                           detail: "algorithm=\(algorithm.rawValue) version=1", on: connection)
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
        let found = try await database.withConnection { connection in
            try await keys.findWithMaterial(name: name, reachFrom: principal.space, versions: [], latest: false, on: connection)
        }
        guard let (key, _) = found else { throw Self.notFound(name) }
        return key
    }

    /// A page of the keys the caller reaches, ordered by name.
    public func list(limit: Int, cursor: String?, by principal: Principal) async throws -> Page<KMSKeyRecord> {
        try principal.require(.metadata)
        let after = try ConfigValidation.decodeCursor(cursor)
        let (keys, owners) = (self.keys, self.owners)
        let rows = try await database.withConnection { connection in
            let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
            return try await keys.list(spaces: reach, after: after, limit: limit + 1, on: connection)
        }
        let items = Array(rows.prefix(limit))
        return Page(items: items, nextCursor: rows.count > limit ? items.last.map { ConfigValidation.encodeCursor($0.name) } : nil)
    }

    /// Changes the description, the minimum version that decrypts, or whether the key works.
    public func update(name: String, _ patch: KMSKeyPatch, by principal: Principal) async throws -> KMSKeyRecord {
        let resource = Self.resource(name)
        try await audit.authorize(principal, .admin, action: "kms_key.update", resource: resource, space: nil)
        if let description = patch.description { try ConfigValidation.checkDescription(description) }
        let (keys, audit) = (self.keys, self.audit)
        return try await database.transaction { connection in
            guard var key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: connection) else { throw Self.notFound(name) }
            var changes: [String] = []
            if let minimum = patch.minDecryptionVersion {
                guard minimum >= 1, minimum <= Int(key.latestVersion) else {
                    throw CofferError.unprocessable(
                        "`min_decryption_version` must lie between 1 and the latest version, \(key.latestVersion)", code: "invalid_min_decryption_version"
                    )
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
            try await keys.update(key, on: connection)
            try await audit.record("kms_key.update", resource: resource, space: key.space, by: principal,
                                   detail: changes.joined(separator: " "), on: connection)
            return key
        }
    }

    /// A new version becomes the one that encrypts; older versions keep decrypting.
    public func rotate(name: String, by principal: Principal) async throws -> KMSKeyRecord {
        let resource = Self.resource(name)
        try await audit.authorize(principal, .admin, action: "kms_key.rotate", resource: resource, space: nil)
        let (keys, audit, keyring) = (self.keys, self.audit, self.keyring)
        return try await withFreshKeys {
            try await database.transaction { connection in
                guard var key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: connection) else { throw Self.notFound(name) }
                let algorithm = KMSAlgorithm(rawValue: key.algorithm) ?? .aes256GCM
                let next = key.latestVersion + 1
                let (kekVersion, sealed) = try keyring.sealKMSKey(SymmetricKey(size: algorithm.keySize), keyID: key.uuid, version: UInt32(next))
                try await self.confirmActiveKEK(kekVersion, on: connection)
                try await keys.insertVersion(KMSKeyVersionRecord(keyID: key.uuid, version: next, kekVersion: Int32(kekVersion), sealedKey: sealed), on: connection)
                key.latestVersion = next
                key.updatedAt = Date()
                try await keys.update(key, on: connection)
                try await audit.record("kms_key.rotate", resource: resource, space: key.space, by: principal, detail: "version=\(next)", on: connection)
                return key
            }
        }
    }

    /// Deletes a key and the material of every version: whatever it encrypted can never be
    /// decrypted again. `confirm` must repeat the key's name.
    public func delete(name: String, confirm: String, by principal: Principal) async throws {
        let resource = Self.resource(name)
        try await audit.authorize(principal, .admin, action: "kms_key.delete", resource: resource, space: nil)
        guard confirm == name else {
            throw CofferError.invalidInput(
                "deleting a KMS key destroys every version of its material and nothing it encrypted can be decrypted again; set `confirm` to the key's name",
                code: "confirmation_required"
            )
        }
        let (keys, audit) = (self.keys, self.audit)
        let erased = try await database.transaction { connection in
            guard let key = try await keys.findForUpdate(name: name, reachFrom: principal.space, on: connection) else { throw Self.notFound(name) }
            let erased = try await keys.delete(key.uuid, on: connection)
            try await audit.record("kms_key.delete", resource: resource, space: key.space, by: principal, detail: "versions_erased=\(erased)", on: connection)
            return erased
        }
        logger.info("KMS key deleted; its material is erased", metadata: ["kms_key": "\(name)", "versions": "\(erased)"])
    }

    // MARK: Operations

    /// Runs an operation over 1 to ``maximumBatch`` items; each item succeeds or fails on
    /// its own. The request fails as a whole only when the key is unknown, out of reach or
    /// disabled, the caller may not use keys, or the database is unavailable. The outcomes
    /// are returned only once the operation's audit event is stored.
    /// - Parameter includePlaintext: for `datakey`, whether to return the new key in plaintext too.
    public func perform(_ operation: KMSOperation, key name: String, items: [KMSItem], includePlaintext: Bool = true,
                        by principal: Principal) async throws -> [KMSItemOutcome] {
        let resource = Self.resource(name)
        let action = "kms.\(operation.rawValue)"
        try await audit.authorize(principal, .useKeys, action: action, resource: resource, space: nil)
        guard (1...Self.maximumBatch).contains(items.count) else {
            throw items.isEmpty
                ? CofferError.invalidInput("a batch needs at least one item", code: "empty_batch")
                : CofferError.tooLarge("a batch may hold at most \(Self.maximumBatch) items")
        }

        // Parse what can be parsed without the key; remember the versions to load.
        var parsed: [Result<(ciphertext: KMSCiphertext?, plaintext: [UInt8]?, context: [UInt8]), CofferError>] = []
        parsed.reserveCapacity(items.count)
        var versions: Set<Int32> = []
        for item in items {
            do {
                let context = try Self.decodeContext(item.context)
                switch operation {
                case .encrypt:
                    parsed.append(.success((nil, try Self.decodePlaintext(item.plaintext), context)))
                case .decrypt, .rewrap:
                    let ciphertext = try Self.parseCiphertext(item.ciphertext)
                    if ciphertext.version <= UInt32(Int32.max) { versions.insert(Int32(ciphertext.version)) }
                    parsed.append(.success((ciphertext, nil, context)))
                case .datakey:
                    parsed.append(.success((nil, nil, context)))
                }
            } catch let error as CofferError {
                parsed.append(.failure(error))
            }
        }

        let (keys, keyring) = (self.keys, self.keyring)
        let latestNeeded = operation != .decrypt
        let wanted = versions.sorted()
        let (key, material) = try await withFreshKeys { () -> (KMSKeyRecord, [Int32: SymmetricKey]) in
            let found = try await database.withConnection { connection in
                try await keys.findWithMaterial(name: name, reachFrom: principal.space, versions: wanted, latest: latestNeeded, on: connection)
            }
            guard let (key, sealed) = found else { throw Self.notFound(name) }
            var material: [Int32: SymmetricKey] = [:]
            for (version, row) in sealed {
                material[version] = try keyring.openKMSKey(row.sealedKey, keyID: key.uuid, version: UInt32(version))
            }
            return (key, material)
        }
        guard key.enabled else {
            await audit.recordFailure(action, resource: resource, space: key.space, by: principal, detail: "disabled")
            throw CofferError(.conflict, code: "kms_key_disabled", "KMS key `\(name)` is disabled; an admin can enable it")
        }

        let latest = UInt32(key.latestVersion)
        var outcomes: [KMSItemOutcome] = []
        outcomes.reserveCapacity(items.count)
        for entry in parsed {
            switch entry {
            case .failure(let error):
                outcomes.append(.failed(error))
            case .success(let (ciphertext, plaintext, context)):
                do {
                    outcomes.append(try Self.run(operation, key: key, material: material, latest: latest, ciphertext: ciphertext,
                                                 plaintext: plaintext, context: context, includePlaintext: includePlaintext))
                } catch let error as CofferError {
                    outcomes.append(.failed(error))
                }
            }
        }

        let failed = outcomes.filter { $0.error != nil }.count
        let used = Set(outcomes.compactMap(\.keyVersion)).sorted().map(String.init).joined(separator: ",")
        var detail = items.count == 1 ? "version=\(used.isEmpty ? "-" : used)" : "items=\(items.count) failed=\(failed) versions=\(used.isEmpty ? "-" : used)"
        if failed > 0, let code = outcomes.first(where: { $0.error != nil })?.error?.code { detail += " error=\(code)" }
        let event = AuditRecord(actor: principal.apiKeyID, actorSpace: principal.space, action: action, resource: resource, space: key.space,
                                requestID: principal.requestID, outcome: failed == 0 ? .success : .failure, detail: detail)
        let repository = AuditRepository(logger: logger)
        try await database.withConnection { try await repository.insert(event, on: $0) }
        return outcomes
    }

    static func run(_ operation: KMSOperation, key: KMSKeyRecord, material: [Int32: SymmetricKey], latest: UInt32, ciphertext: KMSCiphertext?,
                    plaintext: [UInt8]?, context: [UInt8], includePlaintext: Bool) throws -> KMSItemOutcome {
        func seal(_ bytes: [UInt8]) throws -> KMSItemOutcome {
            guard let keyMaterial = material[Int32(latest)] else {
                throw CofferError.unavailable("KMS key `\(key.name)` version \(latest) has no material loaded; retry")
            }
            let sealed = try KMSCiphertext.seal(bytes, key: keyMaterial, version: latest,
                                                associatedData: AssociatedData.kmsCiphertext(keyID: key.uuid, version: latest, context: context))
            return KMSItemOutcome(ciphertext: sealed.text, keyVersion: Int(latest))
        }
        func open(_ ciphertext: KMSCiphertext) throws -> [UInt8] {
            let version = ciphertext.version
            guard version <= latest, let keyMaterial = material[Int32(version)] else {
                throw CofferError.unprocessable("KMS key `\(key.name)` has no version \(version); its latest is \(latest)", code: "unknown_key_version")
            }
            guard version >= UInt32(key.minDecryptionVersion) else {
                throw CofferError.unprocessable(
                    "the ciphertext is under version \(version) of KMS key `\(key.name)`, below its min_decryption_version \(key.minDecryptionVersion); an admin can lower it",
                    code: "key_version_below_minimum"
                )
            }
            do {
                return try ciphertext.open(key: keyMaterial, associatedData: AssociatedData.kmsCiphertext(keyID: key.uuid, version: version, context: context))
            } catch {
                throw CofferError.unprocessable(
                    "the ciphertext does not open under KMS key `\(key.name)` version \(version) with this context (another key, another context, or altered bytes)",
                    code: "decryption_failed"
                )
            }
        }
        switch operation {
        case .encrypt:
            return try seal(plaintext ?? [])
        case .decrypt:
            guard let ciphertext else { throw invalidCiphertext }
            return KMSItemOutcome(plaintext: try open(ciphertext), keyVersion: Int(ciphertext.version))
        case .rewrap:
            guard let ciphertext else { throw invalidCiphertext }
            return try seal(try open(ciphertext))
        case .datakey:
            let dataKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            var outcome = try seal(dataKey)
            if includePlaintext { outcome.plaintext = dataKey }
            return outcome
        }
    }

    // MARK: Helpers

    static let invalidCiphertext = CofferError.invalidInput(
        "`ciphertext` must be a Coffer KMS ciphertext, `coffer:v<version>:<base64>`, exactly as encrypt returned it", code: "invalid_ciphertext"
    )

    static func parseCiphertext(_ text: String?) throws -> KMSCiphertext {
        guard let text else { throw CofferError.invalidInput("`ciphertext` is required", code: "invalid_ciphertext") }
        guard let ciphertext = KMSCiphertext(parsing: text) else { throw invalidCiphertext }
        return ciphertext
    }

    static func decodePlaintext(_ text: String?) throws -> [UInt8] {
        guard let text else { throw CofferError.invalidInput("`plaintext` is required", code: "invalid_plaintext") }
        guard text.utf8.count <= (maximumPlaintextBytes + 2) / 3 * 4 + 4 else {
            throw CofferError.tooLarge("a plaintext may be at most 64 KiB; encrypt larger data under a data key (`datakey`)")
        }
        guard let data = Data(base64Encoded: text) else {
            throw CofferError.invalidInput("`plaintext` must be base64", code: "invalid_plaintext")
        }
        guard data.count <= maximumPlaintextBytes else {
            throw CofferError.tooLarge("a plaintext may be at most 64 KiB; encrypt larger data under a data key (`datakey`)")
        }
        return [UInt8](data)
    }

    static func decodeContext(_ text: String?) throws -> [UInt8] {
        guard let text else { return [] }
        guard text.utf8.count <= (maximumContextBytes + 2) / 3 * 4, let data = Data(base64Encoded: text), data.count <= maximumContextBytes else {
            throw CofferError.invalidInput("`context` must be base64 of at most 8 KiB", code: "invalid_context")
        }
        return [UInt8](data)
    }

    static func resource(_ name: String) -> String { "kms_key:\(name)" }

    static func notFound(_ name: String) -> CofferError {
        CofferError(.notFound, code: "kms_key_not_found", "KMS key `\(name)` not found")
    }

    /// Inside a write's transaction: the key-encryption key that sealed new material is
    /// still the active one (held against a rotation until commit); otherwise reload.
    func confirmActiveKEK(_ version: UInt32, on connection: PostgresConnection) async throws {
        guard try await keyLifecycle.isActiveKeyEncryptionKey(version: Int32(version), on: connection) else { throw StaleKeyring() }
    }

    /// Runs `body` again with freshly loaded keys when another process rotated the
    /// key-encryption key (a stale active key, or material under a key not loaded yet).
    func withFreshKeys<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await KeyLifecycle.withFreshKeys(lifecycle, body)
    }
}
