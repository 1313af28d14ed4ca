import CofferCrypto
import CofferKeys
import CofferStore
import Crypto
import Foundation
import Logging
import Synchronization

/// Key lifecycle (CONTRACT §5): list, rotate (with rewrap), destroy a version through a
/// resumable re-encryption job, automatic data key rotation, reloading the keyring when
/// another process changed keys, and root key migration.
public final class KeyLifecycle: Sendable {
    let database: Database
    let hierarchy: KeyHierarchy
    public let keyring: Keyring
    let keys: KeyRepository
    let lifecycle: KeyLifecycleRepository
    let audit: AuditLog
    let access: AccessControl
    let batchSize: Int
    let batchPause: Duration
    let logger: Logger
    let lastGeneration = Mutex<Int64?>(nil)

    /// - Parameter loadedGeneration: the key generation `keyring` was loaded at, so the
    ///   first ``reloadIfChanged()`` does not load it again; nil to reload on first poll.
    public init(database: Database, hierarchy: KeyHierarchy, keyring: Keyring, loadedGeneration: Int64? = nil,
                batchSize: Int = 500, batchPause: Duration = .zero, audit: AuditLog? = nil, logger: Logger) {
        self.database = database
        self.hierarchy = hierarchy
        self.keyring = keyring
        self.keys = KeyRepository(logger: logger)
        self.lifecycle = KeyLifecycleRepository(logger: logger)
        self.audit = audit ?? AuditLog(database: database, keyring: keyring, logger: logger)
        self.access = AccessControl(audit: self.audit)
        self.batchSize = batchSize
        self.batchPause = batchPause
        self.logger = logger
        self.lastGeneration.withLock { $0 = loadedGeneration }
    }

    // MARK: Listing

    public func list(by principal: Principal = .commandLine) async throws -> [KeyVersionView] {
        try await authorize(principal, action: "keys.list")
        let (keys, lifecycle) = (self.keys, self.lifecycle)
        return try await database.withSession { session in
            let keks = try await keys.keyEncryptionKeys(on: session)
            let deks = try await keys.dataKeys(on: session)
            let counts = try await lifecycle.valueCounts(on: session)
            var views = keks.map { kek in
                KeyVersionView(id: "kek-v\(kek.version)", purpose: "kek", version: Int(kek.version), state: kek.state,
                               createdAt: kek.createdAt, root: "\(kek.rootType):\(kek.rootKeyID)")
            }
            views += deks.map { dek in
                KeyVersionView(id: "\(dek.purpose)-v\(dek.version)", purpose: dek.purpose, version: Int(dek.version), state: dek.state,
                               createdAt: dek.createdAt, kekVersion: Int(dek.kekVersion),
                               values: dek.purpose == DataKeyPurpose.database.rawValue ? counts[dek.version] ?? 0 : 0)
            }
            return views
        }
    }

    public func jobs(by principal: Principal = .commandLine) async throws -> [DestructionJobRecord] {
        try await authorize(principal, action: "keys.jobs")
        let lifecycle = self.lifecycle
        return try await database.withSession { try await lifecycle.jobs(on: $0) }
    }

    // MARK: Rotation

    /// New versions of the key-encryption key and of every data key become active; older
    /// versions keep decrypting. With `rewrap`, every data key version and every KMS key
    /// version is resealed under the new key-encryption key, and key-encryption keys no
    /// longer needed are erased.
    public func rotate(rewrap: Bool, by principal: Principal = .commandLine) async throws -> RotationResult {
        try await authorize(principal, action: "keys.rotate")
        var kek = [UInt8](repeating: 0, count: 32)
        kek.withUnsafeMutableBytes { SystemRandomNumberGenerator.fill($0) }
        let newKEK = SymmetricKey(data: kek)
        let wrapped: [UInt8]
        do {
            wrapped = try await hierarchy.root.wrap(kek)
            SecretMemory.zero(&kek)
        } catch {
            SecretMemory.zero(&kek)
            throw error
        }
        let (keys, lifecycle, hierarchy, audit, root) = (self.keys, self.lifecycle, self.hierarchy, self.audit, hierarchy.root)
        let result = try await database.transaction { session -> RotationResult in
            try await lifecycle.lockKeyChanges(on: session)
            let keks = try await keys.keyEncryptionKeys(on: session)
            let version = (keks.map(\.version).max() ?? 0) + 1
            for old in keks where old.state == .active {
                try await lifecycle.setKeyEncryptionKeyState(version: old.version, state: .retired, on: session)
            }
            try await keys.insertKeyEncryptionKey(
                version: version, rootType: root.rootType.rawValue, rootKeyID: root.rootKeyID, wrappedKey: wrapped, state: .active,
                on: session
            )
            let deks = try await keys.dataKeys(on: session)
            var newVersions: [String: Int] = [:]
            for purpose in DataKeyPurpose.allCases {
                let next = (deks.filter { $0.purpose == purpose.rawValue }.map(\.version).max() ?? 0) + 1
                for old in deks where old.purpose == purpose.rawValue && old.state == .active {
                    try await lifecycle.setDataKeyState(purpose: purpose.rawValue, version: old.version, state: .retired, on: session)
                }
                let sealed = try Self.sealDataKey(SymmetricKey(size: .bits256), purpose: purpose.rawValue, version: next, under: newKEK, kekVersion: version)
                try await keys.insertDataKey(purpose: purpose.rawValue, version: next, kekVersion: version, sealedKey: sealed, state: .active, on: session)
                newVersions[purpose.rawValue] = Int(next)
            }
            var rewrapped = 0
            var erased: [Int32] = []
            if rewrap {
                for dek in deks where dek.sealedKey != nil && dek.kekVersion != version {
                    guard let oldKEK = keks.first(where: { $0.version == dek.kekVersion }) else { continue }
                    let key = SecretMemory.using(try await Self.openDataKey(dek, under: hierarchy.keyEncryptionKey(oldKEK))) { SymmetricKey(data: $0) }
                    let sealed = try Self.sealDataKey(key, purpose: dek.purpose, version: dek.version, under: newKEK, kekVersion: version)
                    try await lifecycle.rewrapDataKey(purpose: dek.purpose, version: dek.version, kekVersion: version, sealedKey: sealed, on: session)
                    rewrapped += 1
                }
                // Named KMS keys are sealed under the key-encryption key too: rewrap them
                // before erasing what no longer seals anything.
                let kmsKeys = KMSKeyRepository(logger: Logger(label: "coffer.keys"))
                for var kmsVersion in try await kmsKeys.versions(notSealedUnder: version, on: session) {
                    guard let oldKEK = keks.first(where: { $0.version == kmsVersion.kekVersion }) else { continue }
                    let sealed = try SealedValue(bytes: kmsVersion.sealedKey)
                    let associatedData = AssociatedData.kmsKey(keyID: kmsVersion.keyID, version: UInt32(kmsVersion.version))
                    let raw = try sealed.open(key: try await hierarchy.keyEncryptionKey(oldKEK), version: UInt32(oldKEK.version), associatedData: associatedData)
                    kmsVersion.sealedKey = try SealedValue.seal(raw, key: newKEK, keyVersion: UInt32(version), associatedData: associatedData).bytes
                    kmsVersion.kekVersion = version
                    try await kmsKeys.rewrap(kmsVersion, on: session)
                    rewrapped += 1
                }
                erased = try await lifecycle.eraseUnusedKeyEncryptionKeys(on: session)
            }
            try await lifecycle.bumpGeneration(on: session)
            try await audit.record("keys.rotate", resource: "keys", space: "root", by: principal,
                                   detail: "kek=v\(version) rewrap=\(rewrap) rewrapped=\(rewrapped)", on: session)
            return RotationResult(kekVersion: Int(version), dataKeyVersions: newVersions, rewrapped: rewrapped, erasedKEKs: erased.map(Int.init))
        }
        logger.info("keys rotated", metadata: ["kek_version": "\(result.kekVersion)", "rewrapped": "\(result.rewrapped)"])
        try await reload()
        return result
    }

    /// Rotates the data keys older than `period` (only those), under the active
    /// key-encryption key. Any replica may call it; the lock and the age check inside the
    /// transaction make exactly one of them rotate.
    @discardableResult
    public func rotateExpiredDataKeys(olderThan period: Int) async throws -> [String] {
        let (keys, lifecycle, hierarchy, audit) = (self.keys, self.lifecycle, self.hierarchy, self.audit)
        let rotated = try await database.transaction { session -> [String] in
            try await lifecycle.lockKeyChanges(on: session)
            let cutoff = Date().addingTimeInterval(-Double(period))
            let deks = try await keys.dataKeys(on: session)
            let expired = deks.filter { $0.state == .active && $0.createdAt < cutoff }
            guard !expired.isEmpty else { return [] }
            guard let activeKEK = try await keys.keyEncryptionKeys(on: session).last(where: { $0.state == .active }) else { return [] }
            let kekKey = try await hierarchy.keyEncryptionKey(activeKEK)
            var rotated: [String] = []
            for old in expired {
                let next = (deks.filter { $0.purpose == old.purpose }.map(\.version).max() ?? 0) + 1
                try await lifecycle.setDataKeyState(purpose: old.purpose, version: old.version, state: .retired, on: session)
                let sealed = try Self.sealDataKey(SymmetricKey(size: .bits256), purpose: old.purpose, version: next, under: kekKey, kekVersion: activeKEK.version)
                try await keys.insertDataKey(purpose: old.purpose, version: next, kekVersion: activeKEK.version, sealedKey: sealed, state: .active, on: session)
                rotated.append("\(old.purpose)-v\(next)")
            }
            try await lifecycle.bumpGeneration(on: session)
            try await audit.record("keys.rotate_automatic", resource: "keys", space: "root", by: .system, detail: rotated.joined(separator: ","), on: session)
            return rotated
        }
        if !rotated.isEmpty {
            logger.info("data keys rotated automatically", metadata: ["versions": "\(rotated.joined(separator: ","))"])
            try await reload()
        }
        return rotated
    }

    // MARK: Reloading

    /// The current key generation, to read before loading a keyring at start-up.
    public static func generation(on database: Database, logger: Logger) async throws -> Int64 {
        let lifecycle = KeyLifecycleRepository(logger: logger)
        return try await database.withSession { try await lifecycle.generation(on: $0) }
    }

    /// Reloads the keyring if keys changed since the last load (the generation moved).
    public func reloadIfChanged() async throws {
        let lifecycle = self.lifecycle
        let generation = try await database.withSession { try await lifecycle.generation(on: $0) }
        guard generation != lastGeneration.withLock({ $0 }) else { return }
        try await reload()
    }

    /// Loads every key again from the database and replaces the keyring's contents.
    public func reload() async throws {
        let (lifecycle, hierarchy) = (self.lifecycle, self.hierarchy)
        // One snapshot: a rotation committing meanwhile is seen entirely or not at all.
        let (generation, fresh) = try await database.transaction(.snapshot) { session in
            (try await lifecycle.generation(on: session), try await hierarchy.loadKeyring(on: session))
        }
        // Concurrent reloads may finish out of order: never go back to an older generation.
        lastGeneration.withLock { last in
            guard generation >= (last ?? .min) else { return }
            keyring.replace(with: fresh)
            last = generation
        }
    }

    /// Checks, inside a write's transaction, that a data key version is still the active
    /// one; if it is not, the keyring is stale and the write must be sealed again.
    public func confirmActive(_ purpose: DataKeyPurpose, version: UInt32, on session: StoreSession) async throws {
        guard try await lifecycle.isActiveDataKey(purpose: purpose.rawValue, version: Int32(version), on: session) else {
            throw StaleKeyring()
        }
    }

    // MARK: Helpers

    /// Runs a read or write; if it sealed under a key another process has just retired,
    /// or met a value sealed under a key this process has not loaded yet, reloads the
    /// keyring and runs it again, up to three times (rotations back to back can retire
    /// the reloaded key too), then answers 503.
    static func withFreshKeys<T: Sendable>(_ lifecycle: KeyLifecycle?, _ body: () async throws -> T) async throws -> T {
        func isStale(_ error: any Error) -> Bool {
            if error is StaleKeyring { return true }
            if let error = error as? SealError, error.code == .unknownKeyVersion { return lifecycle != nil }
            return false
        }
        for _ in 0..<3 {
            do {
                return try await body()
            } catch where isStale(error) {
                try await lifecycle?.reload()
            }
        }
        do {
            return try await body()
        } catch where error is StaleKeyring {
            throw CofferError.unavailable("keys are being rotated; retry")
        }
    }

    func authorize(_ principal: Principal, action: String) async throws {
        try await access.requireRootAdmin(principal, action: action, resource: "keys")
    }

    static func parse(_ id: String) -> (String, Int32)? {
        guard let range = id.range(of: "-v", options: .backwards) else { return nil }
        let purpose = String(id[..<range.lowerBound])
        guard let version = Int32(id[range.upperBound...]), version > 0,
              purpose == "kek" || DataKeyPurpose(rawValue: purpose) != nil
        else { return nil }
        return (purpose, version)
    }

    static func sealDataKey(_ key: SymmetricKey, purpose: String, version: Int32, under kek: SymmetricKey, kekVersion: Int32) throws -> [UInt8] {
        try key.withUnsafeBytes { bytes in
            try SealedValue.seal(bytes, key: kek, keyVersion: UInt32(kekVersion),
                                 associatedData: AssociatedData.dataKey(purpose: purpose, version: UInt32(version))).bytes
        }
    }

    static func openDataKey(_ dek: DataKeyRecord, under kek: SymmetricKey) throws -> [UInt8] {
        guard let sealed = dek.sealedKey else { throw CofferError.keyMissing("\(dek.purpose)-v\(dek.version) has no material") }
        return try SealedValue(bytes: sealed).open(key: kek, version: UInt32(dek.kekVersion),
                                                   associatedData: AssociatedData.dataKey(purpose: dek.purpose, version: UInt32(dek.version)))
    }
}

/// The keyring sealed with a version that is no longer active: reload and seal again.
public struct StaleKeyring: Error, Sendable {}
