import CofferCrypto
import CofferKeys
import CofferStore
import Crypto
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// One key version as `coffer keys list` and `GET /api/v1/keys` show it.
public struct KeyVersionView: Sendable, Equatable {
    /// `kek-v2`, `database-v3`, `audit-v1`: what `destroy` takes.
    public var id: String
    /// `kek`, `database` or `audit`.
    public var purpose: String
    public var version: Int
    public var state: String
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

/// Key lifecycle (CONTRACT §5): list, rotate (with rewrap), destroy a version through a
/// resumable re-encryption job, automatic data key rotation, reloading the keyring when
/// another process changed keys, and root key migration.
public final class KeyLifecycle: Sendable {
    /// Serialises key changes across processes (transaction-level advisory lock).
    static let lockKey: Int64 = 7_102_318_003

    private let database: Database
    private let hierarchy: KeyHierarchy
    public let keyring: Keyring
    private let keys: KeyRepository
    private let lifecycle: KeyLifecycleRepository
    private let audit: AuditLog
    private let batchSize: Int
    private let batchPause: Duration
    private let logger: Logger
    private let lastGeneration = Mutex<Int64?>(nil)

    public init(database: Database, hierarchy: KeyHierarchy, keyring: Keyring, batchSize: Int = 500, batchPause: Duration = .zero, logger: Logger) {
        self.database = database
        self.hierarchy = hierarchy
        self.keyring = keyring
        self.keys = KeyRepository(logger: logger)
        self.lifecycle = KeyLifecycleRepository(logger: logger)
        self.audit = AuditLog(database: database, logger: logger)
        self.batchSize = batchSize
        self.batchPause = batchPause
        self.logger = logger
    }

    // MARK: Listing

    public func list(by principal: Principal = .commandLine) async throws -> [KeyVersionView] {
        try await authorize(principal, action: "keys.list")
        let (keys, lifecycle) = (self.keys, self.lifecycle)
        return try await database.withConnection { connection in
            let keks = try await keys.keyEncryptionKeys(on: connection)
            let deks = try await keys.dataKeys(on: connection)
            let counts = try await lifecycle.valueCounts(on: connection)
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
        return try await database.withConnection { try await lifecycle.jobs(on: $0) }
    }

    // MARK: Rotation

    /// New versions of the key-encryption key and of every data key become active; older
    /// versions keep decrypting. With `rewrap`, every data key version is resealed under
    /// the new key-encryption key and key-encryption keys no longer needed are erased.
    public func rotate(rewrap: Bool, by principal: Principal = .commandLine) async throws -> RotationResult {
        try await authorize(principal, action: "keys.rotate")
        var kek = [UInt8](repeating: 0, count: 32)
        kek.withUnsafeMutableBytes { SystemRandomNumberGenerator.fill($0) }
        let wrapped = try await hierarchy.root.wrap(kek)
        let newKEK = SymmetricKey(data: kek)
        let (keys, lifecycle, hierarchy, audit, root) = (self.keys, self.lifecycle, self.hierarchy, self.audit, hierarchy.root)
        let result = try await database.transaction { connection -> RotationResult in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: Logger(label: "coffer.keys"))
            let keks = try await keys.keyEncryptionKeys(on: connection)
            let version = (keks.map(\.version).max() ?? 0) + 1
            for old in keks where old.state == "active" {
                try await lifecycle.setKeyEncryptionKeyState(version: old.version, state: "retired", on: connection)
            }
            try await keys.insertKeyEncryptionKey(
                version: version, rootType: root.rootType.rawValue, rootKeyID: root.rootKeyID, wrappedKey: wrapped, state: "active",
                on: connection
            )
            let deks = try await keys.dataKeys(on: connection)
            var newVersions: [String: Int] = [:]
            for purpose in DataKeyPurpose.allCases {
                let next = (deks.filter { $0.purpose == purpose.rawValue }.map(\.version).max() ?? 0) + 1
                for old in deks where old.purpose == purpose.rawValue && old.state == "active" {
                    try await lifecycle.setDataKeyState(purpose: purpose.rawValue, version: old.version, state: "retired", on: connection)
                }
                let sealed = try Self.sealDataKey(SymmetricKey(size: .bits256), purpose: purpose.rawValue, version: next, under: newKEK, kekVersion: version)
                try await keys.insertDataKey(purpose: purpose.rawValue, version: next, kekVersion: version, sealedKey: sealed, state: "active", on: connection)
                newVersions[purpose.rawValue] = Int(next)
            }
            var rewrapped = 0
            var erased: [Int32] = []
            if rewrap {
                for dek in deks where dek.sealedKey != nil && dek.kekVersion != version {
                    guard let oldKEK = keks.first(where: { $0.version == dek.kekVersion }) else { continue }
                    let raw = try await Self.openDataKey(dek, under: hierarchy.keyEncryptionKey(oldKEK))
                    let sealed = try Self.sealDataKey(SymmetricKey(data: raw), purpose: dek.purpose, version: dek.version, under: newKEK, kekVersion: version)
                    try await lifecycle.rewrapDataKey(purpose: dek.purpose, version: dek.version, kekVersion: version, sealedKey: sealed, on: connection)
                    rewrapped += 1
                }
                erased = try await lifecycle.eraseUnusedKeyEncryptionKeys(on: connection)
            }
            try await lifecycle.bumpGeneration(on: connection)
            try await audit.record("keys.rotate", resource: "keys", space: "root", by: principal,
                                   detail: "kek=v\(version) rewrap=\(rewrap) rewrapped=\(rewrapped)", on: connection)
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
        let rotated = try await database.transaction { connection -> [String] in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: Logger(label: "coffer.keys"))
            let cutoff = Date().addingTimeInterval(-Double(period))
            let deks = try await keys.dataKeys(on: connection)
            let expired = deks.filter { $0.state == "active" && $0.createdAt < cutoff }
            guard !expired.isEmpty else { return [] }
            guard let activeKEK = try await keys.keyEncryptionKeys(on: connection).last(where: { $0.state == "active" }) else { return [] }
            let kekKey = try await hierarchy.keyEncryptionKey(activeKEK)
            var rotated: [String] = []
            for old in expired {
                let next = (deks.filter { $0.purpose == old.purpose }.map(\.version).max() ?? 0) + 1
                try await lifecycle.setDataKeyState(purpose: old.purpose, version: old.version, state: "retired", on: connection)
                let sealed = try Self.sealDataKey(SymmetricKey(size: .bits256), purpose: old.purpose, version: next, under: kekKey, kekVersion: activeKEK.version)
                try await keys.insertDataKey(purpose: old.purpose, version: next, kekVersion: activeKEK.version, sealedKey: sealed, state: "active", on: connection)
                rotated.append("\(old.purpose)-v\(next)")
            }
            try await lifecycle.bumpGeneration(on: connection)
            let system = Principal(apiKeyID: "system", space: "root", role: .admin, tokenID: "", expiresAt: .max)
            try await audit.record("keys.rotate_automatic", resource: "keys", space: "root", by: system, detail: rotated.joined(separator: ","), on: connection)
            return rotated
        }
        if !rotated.isEmpty {
            logger.info("data keys rotated automatically", metadata: ["versions": "\(rotated.joined(separator: ","))"])
            try await reload()
        }
        return rotated
    }

    // MARK: Destruction

    /// Starts destroying a key version. A data key version gets a job that re-encrypts
    /// every value and history version sealed under it, then erases it; a key-encryption
    /// key version is erased at once if no data key needs it. The active version of
    /// either is refused. Starting a job that already runs returns it.
    public func destroy(_ id: String, by principal: Principal = .commandLine) async throws -> DestructionJobRecord? {
        try await authorize(principal, action: "keys.destroy")
        guard let (purpose, version) = Self.parse(id) else {
            throw CofferError.invalidInput("a key version id looks like `database-v2` or `kek-v1` (see `coffer keys list`)", code: "invalid_key_version")
        }
        let (keys, lifecycle, audit) = (self.keys, self.lifecycle, self.audit)
        let job = try await database.transaction { connection -> DestructionJobRecord? in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: Logger(label: "coffer.keys"))
            if purpose == "kek" {
                guard let kek = try await keys.keyEncryptionKeys(on: connection).first(where: { $0.version == version }) else {
                    throw CofferError.notFound("key version \(id) does not exist")
                }
                guard kek.state == "retired" else {
                    throw CofferError.conflict(kek.state == "active" ? "\(id) is active; rotate first" : "\(id) is already destroyed")
                }
                let users = try await keys.dataKeys(on: connection).filter { $0.kekVersion == version && $0.sealedKey != nil }
                guard users.isEmpty else {
                    throw CofferError.conflict("\(id) still seals \(users.count) data key version(s); run `coffer keys rotate --rewrap` first")
                }
                _ = try await lifecycle.eraseUnusedKeyEncryptionKeys(on: connection)
                try await lifecycle.bumpGeneration(on: connection)
                try await audit.record("keys.destroy", resource: "key:\(id)", space: "root", by: principal, on: connection)
                return nil
            }
            guard let dek = try await keys.dataKeys(on: connection).first(where: { $0.purpose == purpose && $0.version == version }) else {
                throw CofferError.notFound("key version \(id) does not exist")
            }
            if let running = try await lifecycle.jobs(running: true, on: connection).first(where: { $0.purpose == purpose && $0.version == version }) {
                return running
            }
            guard dek.state == "retired" else {
                throw CofferError.conflict(dek.state == "active" ? "\(id) is the active version; rotate first, then destroy it" : "\(id) is already destroyed")
            }
            let total = purpose == DataKeyPurpose.database.rawValue ? try await lifecycle.countSealed(dekVersion: version, on: connection) : 0
            let job = try await lifecycle.insertJob(purpose: purpose, version: version, total: total, requestedBy: principal.apiKeyID, on: connection)
            try await audit.record("keys.destroy", resource: "key:\(id)", space: "root", by: principal, detail: "job=\(job.id) values=\(total)", on: connection)
            return job
        }
        if job == nil { try await reload() }
        return job
    }

    /// Runs every running job that no other process is running, each while holding its
    /// advisory lock on a connection of its own. Returns the ids of jobs it finished.
    /// `shouldStop` is asked between batches: a job stopped this way stays `running` and
    /// resumes on the next run (here or on another replica).
    @discardableResult
    public func runPendingJobs(shouldStop: @escaping @Sendable () -> Bool = { false }) async throws -> [Int64] {
        let lifecycle = self.lifecycle
        let pending = try await database.withConnection { try await lifecycle.jobs(running: true, on: $0) }
        var finished: [Int64] = []
        for job in pending.reversed() {
            let ran = try await database.withDedicatedConnection { connection -> Bool in
                guard try await lifecycle.tryLockJob(job.id, on: connection) else { return false }
                do {
                    try await self.run(job, on: connection, shouldStop: shouldStop)
                    try? await lifecycle.unlockJob(job.id, on: connection)
                    return true
                } catch {
                    try? await lifecycle.unlockJob(job.id, on: connection)
                    throw error
                }
            }
            if ran { finished.append(job.id) }
        }
        return finished
    }

    private func run(_ job: DestructionJobRecord, on connection: PostgresConnection, shouldStop: @Sendable () -> Bool) async throws {
        // Another process may have finished it between listing and locking.
        guard try await lifecycle.job(id: job.id, on: connection)?.state == "running" else { return }
        logger.info("destruction job running", metadata: ["job": "\(job.id)", "key": "\(job.purpose)-v\(job.version)"])
        let version = job.version
        if job.purpose == DataKeyPurpose.database.rawValue {
            while true {
                let moved = try await inTransaction(on: connection) {
                    var rows = try await self.lifecycle.lockCurrentValues(dekVersion: version, limit: self.batchSize, on: connection)
                    if rows.isEmpty { rows = try await self.lifecycle.lockHistoryValues(dekVersion: version, limit: self.batchSize, on: connection) }
                    guard !rows.isEmpty else { return 0 }
                    var activeVersion: Int32?
                    for row in rows {
                        let associatedData = AssociatedData.configValue(ownerID: row.ownerID, configID: row.configID)
                        let plaintext = try self.keyring.open(try SealedValue(bytes: row.sealedValue), purpose: .database, associatedData: associatedData)
                        let sealed = try self.keyring.seal(plaintext, purpose: .database, associatedData: associatedData)
                        if activeVersion != Int32(sealed.keyVersion) {
                            guard try await self.lifecycle.isActiveDataKey(purpose: job.purpose, version: Int32(sealed.keyVersion), on: connection),
                                  sealed.keyVersion != UInt32(version)
                            else { throw StaleKeyring() }
                            activeVersion = Int32(sealed.keyVersion)
                        }
                        try await self.lifecycle.replaceSealed(row, sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), on: connection)
                    }
                    try await self.lifecycle.addProgress(job: job.id, done: Int64(rows.count), on: connection)
                    return rows.count
                }
                if moved == 0 { break }
                if shouldStop() {
                    logger.info("destruction job paused for shutdown", metadata: ["job": "\(job.id)"])
                    return
                }
                if batchPause > .zero { try await Task.sleep(for: batchPause) }
            }
        }
        // Final check with writers blocked: nothing names the version any more.
        let erased = try await inTransaction(on: connection) {
            try await self.lifecycle.lockValueTables(on: connection)
            guard try await self.lifecycle.countSealed(dekVersion: version, on: connection) == 0 || job.purpose != DataKeyPurpose.database.rawValue else {
                return false
            }
            try await self.lifecycle.eraseDataKey(purpose: job.purpose, version: version, on: connection)
            try await self.lifecycle.finishJob(job.id, state: "completed", on: connection)
            try await self.lifecycle.bumpGeneration(on: connection)
            let system = Principal(apiKeyID: "system", space: "root", role: .admin, tokenID: "", expiresAt: .max)
            try await self.audit.record("keys.destroyed", resource: "key:\(job.purpose)-v\(version)", space: "root", by: system,
                                        detail: "job=\(job.id)", on: connection)
            return true
        }
        if erased {
            logger.info("destruction job completed", metadata: ["job": "\(job.id)", "key": "\(job.purpose)-v\(version)"])
            try await reload()
        }
    }

    /// BEGIN … COMMIT on a connection this process holds (a job's).
    private func inTransaction<T: Sendable>(on connection: PostgresConnection, _ body: () async throws -> T) async throws -> T {
        try await connection.query("BEGIN", logger: logger)
        do {
            let result = try await body()
            try await connection.query("COMMIT", logger: logger)
            return result
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            if error is StaleKeyring { try await reload() }
            throw error
        }
    }

    // MARK: Reloading

    /// Reloads the keyring if keys changed since the last load (the generation moved).
    public func reloadIfChanged() async throws {
        let lifecycle = self.lifecycle
        let generation = try await database.withConnection { try await lifecycle.generation(on: $0) }
        guard generation != lastGeneration.withLock({ $0 }) else { return }
        try await reload()
    }

    /// Loads every key again from the database and replaces the keyring's contents.
    public func reload() async throws {
        let (lifecycle, hierarchy) = (self.lifecycle, self.hierarchy)
        let (generation, fresh) = try await database.withConnection { connection in
            (try await lifecycle.generation(on: connection), try await hierarchy.loadKeyring(on: connection))
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
    public func confirmActive(_ purpose: DataKeyPurpose, version: UInt32, on connection: PostgresConnection) async throws {
        guard try await lifecycle.isActiveDataKey(purpose: purpose.rawValue, version: Int32(version), on: connection) else {
            throw StaleKeyring()
        }
    }

    // MARK: Root key migration

    /// Rewraps every key-encryption key that has material under the configured root,
    /// unwrapping with whichever of this process's roots wrapped it, then proves that
    /// every data key and a sample of values open with the new root alone.
    public func migrateRoot(sampleSize: Int = 100) async throws -> RootMigrationResult {
        let (keys, lifecycle, hierarchy, audit, root) = (self.keys, self.lifecycle, self.hierarchy, self.audit, hierarchy.root)
        let result = try await database.transaction { connection -> RootMigrationResult in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: Logger(label: "coffer.keys"))
            var rewrapped: [Int] = []
            var already: [Int] = []
            for kek in try await keys.keyEncryptionKeys(on: connection) where kek.wrappedKey != nil {
                if kek.rootType == root.rootType.rawValue && kek.rootKeyID == root.rootKeyID {
                    already.append(Int(kek.version))
                    continue
                }
                let material = try await hierarchy.unwrap(kek)
                let wrapped = try await root.wrap(material.withUnsafeBytes { Array($0) })
                try await lifecycle.rewrapKeyEncryptionKey(
                    version: kek.version, rootType: root.rootType.rawValue, rootKeyID: root.rootKeyID, wrappedKey: wrapped, on: connection
                )
                rewrapped.append(Int(kek.version))
            }
            // Prove the new root alone opens everything, before committing.
            let proof = KeyHierarchy(root: root, logger: Logger(label: "coffer.keys"))
            let fresh = try await proof.loadKeyring(on: connection)
            let dataKeys = try await keys.dataKeys(on: connection).filter { $0.sealedKey != nil }.count
            var checked = 0
            for row in try await lifecycle.sampleValues(limit: sampleSize, on: connection) {
                _ = try fresh.open(try SealedValue(bytes: row.sealedValue), purpose: .database,
                                   associatedData: AssociatedData.configValue(ownerID: row.ownerID, configID: row.configID))
                checked += 1
            }
            try await lifecycle.bumpGeneration(on: connection)
            try await audit.record("keys.root_migrate", resource: "keys", space: "root", by: .commandLine,
                                   detail: "root=\(root.rootType.rawValue):\(root.rootKeyID) rewrapped=\(rewrapped.map(String.init).joined(separator: ","))",
                                   on: connection)
            return RootMigrationResult(rewrapped: rewrapped, alreadyMigrated: already, dataKeysChecked: dataKeys, valuesChecked: checked)
        }
        logger.info("root key migrated", metadata: ["root_type": "\(root.rootType.rawValue)", "root_key_id": "\(root.rootKeyID)"])
        return result
    }

    // MARK: Helpers

    private func authorize(_ principal: Principal, action: String) async throws {
        do {
            try principal.require(.admin)
            guard principal.space == "root" else {
                throw CofferError.forbidden("key lifecycle needs an admin key on the root space")
            }
        } catch {
            await audit.recordDenied(action, resource: "keys", space: "root", by: principal)
            throw error
        }
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
            try SealedValue.seal(Array(bytes), key: kek, keyVersion: UInt32(kekVersion),
                                 associatedData: AssociatedData.dataKey(purpose: purpose, version: UInt32(version))).bytes
        }
    }

    static func openDataKey(_ dek: DataKeyRecord, under kek: SymmetricKey) throws -> [UInt8] {
        guard let sealed = dek.sealedKey else { throw CofferError(.internalFailure, code: "key_missing", "\(dek.purpose)-v\(dek.version) has no material") }
        return try SealedValue(bytes: sealed).open(key: kek, version: UInt32(dek.kekVersion),
                                                   associatedData: AssociatedData.dataKey(purpose: dek.purpose, version: UInt32(dek.version)))
    }
}

/// The keyring sealed with a version that is no longer active: reload and seal again.
public struct StaleKeyring: Error, Sendable {}
