import CofferCrypto
import CofferKeys
import CofferStore
import Crypto
import Foundation
import Logging
import Synchronization

/// The stored key hierarchy under one root: first-time creation of the key-encryption
/// key and data keys, proof that the configured root opens them, and loading them into
/// a ``Keyring``.
public struct KeyHierarchy: Sendable {
    /// What `ensure` found or did.
    public enum SetupOutcome: Sendable, Equatable {
        case created
        case verified
    }

    /// The configured root: wraps new key-encryption keys.
    public let root: any RootKeyProvider
    /// Every root this process may unwrap with: the configured one, then a previous one
    /// during a root key migration.
    private let roots: [any RootKeyProvider]
    private let keys: KeyRepository
    /// Key-encryption keys already unwrapped, by version: a key's material never changes
    /// (a root migration rewraps the same bytes), so each version costs one unwrap per process.
    let unwrapped = KEKCache()
    private let logger: Logger

    public init(root: any RootKeyProvider, previous: (any RootKeyProvider)? = nil, logger: Logger) {
        self.root = root
        self.roots = [root] + (previous.map { [$0] } ?? [])
        self.keys = KeyRepository(logger: logger)
        self.logger = logger
    }

    /// If a key-encryption key is stored, proves the root unwraps it; writes nothing.
    /// - Returns: false when none is stored yet.
    /// - Throws: ``CofferError`` of kind `rootKeyMismatch` when the root is the wrong one.
    @discardableResult
    public func verifyRoot(on session: StoreSession) async throws -> Bool {
        guard try await keys.keyTablesExist(on: session) else { return false }
        let stored = try await keys.keyEncryptionKeys(on: session)
        guard let active = stored.last(where: { $0.state == .active }) else { return false }
        _ = try await unwrap(active)
        return true
    }

    /// Creates the key-encryption key and the first data keys if none exist (in one
    /// transaction), otherwise verifies the root. Call with the migration lock held.
    public func ensure(on session: StoreSession) async throws -> SetupOutcome {
        if try await verifyRoot(on: session) { return .verified }

        var kek = [UInt8](repeating: 0, count: 32)
        kek.withUnsafeMutableBytes { SystemRandomNumberGenerator.fill($0) }
        let kekKey = SymmetricKey(data: kek)
        let wrapped: [UInt8]
        do {
            wrapped = try await root.wrap(kek)
            SecretMemory.zero(&kek)
        } catch {
            SecretMemory.zero(&kek)
            throw error
        }
        let kekVersion: UInt32 = 1

        let keys = self.keys
        try await session.transaction { session in
            try await keys.insertKeyEncryptionKey(
                version: Int32(kekVersion), rootType: root.rootType.rawValue, rootKeyID: root.rootKeyID,
                wrappedKey: wrapped, state: .active, on: session
            )
            for purpose in DataKeyPurpose.allCases {
                let sealed = try KeyLifecycle.sealDataKey(SymmetricKey(size: .bits256), purpose: purpose.rawValue, version: 1, under: kekKey, kekVersion: Int32(kekVersion))
                try await keys.insertDataKey(purpose: purpose.rawValue, version: 1, kekVersion: Int32(kekVersion), sealedKey: sealed, state: .active, on: session)
            }
        }
        logger.info("created key-encryption key and data keys", metadata: [
            "kek_version": "\(kekVersion)", "root_type": "\(root.rootType.rawValue)", "root_key_id": "\(root.rootKeyID)",
        ])
        return .created
    }

    /// Creates version 1 of every data key purpose that has none yet (a purpose added by an
    /// upgrade), sealed under the active key-encryption key, in the caller's transaction.
    /// Returns the purposes it created.
    public func ensurePurposes(on session: StoreSession) async throws -> [DataKeyPurpose] {
        let present = Set(try await keys.dataKeys(on: session).map(\.purpose))
        let missing = DataKeyPurpose.allCases.filter { !present.contains($0.rawValue) }
        guard !missing.isEmpty else { return [] }
        guard let active = try await keys.keyEncryptionKeys(on: session).last(where: { $0.state == .active }) else {
            throw CofferError.unavailable("no key-encryption key is stored; run `coffer migrate` first")
        }
        let kekKey = try await keyEncryptionKey(active)
        for purpose in missing {
            let sealed = try KeyLifecycle.sealDataKey(SymmetricKey(size: .bits256), purpose: purpose.rawValue, version: 1, under: kekKey, kekVersion: active.version)
            try await keys.insertDataKey(purpose: purpose.rawValue, version: 1, kekVersion: active.version, sealedKey: sealed, state: .active, on: session)
            logger.info("created data key", metadata: ["purpose": "\(purpose.rawValue)", "kek_version": "\(active.version)"])
        }
        return missing
    }

    /// Unwraps the active key-encryption key and every one that data keys or KMS key
    /// versions need, and opens every data key that still has material. It reads in several
    /// statements: call it inside `Database.snapshot` or a transaction.
    /// - Throws: `rootKeyMismatch` if the root does not open the key-encryption key;
    ///   `unavailable` if keys have not been set up (`coffer migrate` not run).
    public func loadKeyring(on session: StoreSession) async throws -> Keyring {
        guard try await keys.keyTablesExist(on: session) else {
            throw CofferError.unavailable("the database has no Coffer schema; run `coffer migrate` first")
        }
        let keks = try await keys.keyEncryptionKeys(on: session)
        guard keks.contains(where: { $0.state == .active }) else {
            throw CofferError.unavailable("no key-encryption key is stored; run `coffer migrate` first")
        }
        let dataKeyRows = try await keys.dataKeys(on: session)
        // Data keys and named KMS keys are sealed under key-encryption keys; new KMS key
        // versions are sealed under the active one.
        let kmsKEKs = try await KMSKeyRepository(logger: logger).keyEncryptionKeyVersions(on: session)
        let neededKEKs = Set(dataKeyRows.filter { $0.sealedKey != nil }.map(\.kekVersion)).union(kmsKEKs)
        var unwrapped: [Int32: SymmetricKey] = [:]
        for kek in keks where neededKEKs.contains(kek.version) || kek.state == .active {
            guard kek.wrappedKey != nil else { continue }
            unwrapped[kek.version] = try await keyEncryptionKey(kek)
        }
        var dataKeys: [Keyring.DataKey] = []
        for row in dataKeyRows {
            guard let sealedBytes = row.sealedKey else { continue }  // destroyed
            let purpose = try DataKeyPurpose.stored(row.purpose, in: "data key \(row.purpose) v\(row.version)")
            guard let kekKey = unwrapped[row.kekVersion] else {
                throw CofferError.keyMissing("data key \(row.purpose) v\(row.version) names key-encryption key v\(row.kekVersion), which has no material")
            }
            let sealed = try SealedValue(bytes: sealedBytes)
            let key = SecretMemory.using(try sealed.open(
                key: kekKey, version: UInt32(row.kekVersion),
                associatedData: AssociatedData.dataKey(purpose: row.purpose, version: UInt32(row.version))
            )) { SymmetricKey(data: $0) }
            dataKeys.append(Keyring.DataKey(purpose: purpose, version: UInt32(row.version), key: key, isActive: row.state == .active))
        }
        // What is erased or rewrapped away leaves this replica's memory too.
        self.unwrapped.keep(only: Set(unwrapped.keys))
        let activeKEK = keks.last(where: { $0.state == .active && unwrapped[$0.version] != nil })?.version
        let formatV1Retired = try await KeyLifecycleRepository(logger: logger).formatV1Retired(on: session)
        return Keyring(
            dataKeys: dataKeys,
            keyEncryptionKeys: Dictionary(uniqueKeysWithValues: unwrapped.map { (UInt32($0.key), $0.value) }),
            activeKEK: activeKEK.map(UInt32.init),
            acceptsFormatV1: !formatV1Retired
        )
    }

    private func mismatch(_ kek: KeyEncryptionKeyRecord) -> CofferError {
        CofferError.rootKeyMismatch("the configured \(root.rootType.rawValue) root key (\(root.rootKeyID)) does not unwrap the stored key-encryption key v\(kek.version), which was wrapped by \(kek.rootType) root \(kek.rootKeyID); configure that key")
    }

    /// The unwrapped key-encryption key of a row, from the cache or from its root.
    public func keyEncryptionKey(_ kek: KeyEncryptionKeyRecord) async throws -> SymmetricKey {
        if let cached = unwrapped.get(kek.version) { return cached }
        let key = try await unwrap(kek)
        unwrapped.set(kek.version, key)
        return key
    }

    /// Unwraps with the root that the row names, which must be one of this process's roots.
    public func unwrap(_ kek: KeyEncryptionKeyRecord) async throws -> SymmetricKey {
        guard let wrapped = kek.wrappedKey else {
            throw CofferError.keyMissing("key-encryption key v\(kek.version) has no material")
        }
        // A key wrapped by another root is refused before asking the root, so a wrong KMS key
        // costs no KMS call and a wrong RSA key no decryption attempt.
        guard let root = roots.first(where: { kek.rootType == $0.rootType.rawValue && kek.rootKeyID == $0.rootKeyID }) else {
            throw mismatch(kek)
        }
        var raw: [UInt8]
        do {
            raw = try await root.unwrap(wrapped)
        } catch let error as RootKeyError where error.code == .wrongKey {
            throw mismatch(kek)
        }
        defer { SecretMemory.zero(&raw) }
        guard raw.count == 32 else {
            throw CofferError.rootKeyMismatch("the stored key-encryption key v\(kek.version) did not unwrap to a 256-bit key")
        }
        return SymmetricKey(data: raw)
    }
}

/// Unwrapped key-encryption keys by version.
final class KEKCache: Sendable {
    private let keys = Mutex<[Int32: SymmetricKey]>([:])

    func get(_ version: Int32) -> SymmetricKey? { keys.withLock { $0[version] } }
    func set(_ version: Int32, _ key: SymmetricKey) { keys.withLock { $0[version] = key } }
    /// Forgets every version but `versions`.
    func keep(only versions: Set<Int32>) { keys.withLock { $0 = $0.filter { versions.contains($0.key) } } }
    var versions: Set<Int32> { keys.withLock { Set($0.keys) } }
}
