import CofferCrypto
import CofferStore
import Foundation
import Logging

/// Destroying key versions: a job per data key version that re-encrypts what it seals, in
/// batches, then erases it; run by one process at a time under an advisory lock.
extension KeyLifecycle {
    // MARK: Destruction

    /// Starts destroying a key version. A data key version gets a job that re-encrypts
    /// every value and history version sealed under it, then erases it; a key-encryption
    /// key version is erased at once if no data key or KMS key version needs it. The
    /// active version of either is refused. Starting a job that already runs returns it.
    public func destroy(_ id: String, by principal: Principal = .commandLine) async throws -> DestructionJobRecord? {
        try await authorize(principal, action: "keys.destroy")
        guard let (purpose, version) = Self.parse(id) else {
            throw CofferError.invalidKeyVersion("a key version id looks like `database-v2` or `kek-v1` (see `coffer keys list`)")
        }
        let (keys, lifecycle, audit) = (self.keys, self.lifecycle, self.audit)
        let job = try await database.transaction { session -> DestructionJobRecord? in
            try await lifecycle.lockKeyChanges(on: session)
            if purpose == "kek" {
                guard let kek = try await keys.keyEncryptionKeys(on: session).first(where: { $0.version == version }) else {
                    throw CofferError.notFound("key version \(id) does not exist")
                }
                guard kek.state == .retired else {
                    throw CofferError.conflict(kek.state == .active ? "\(id) is active; rotate first" : "\(id) is already destroyed")
                }
                let users = try await keys.dataKeys(on: session).filter { $0.kekVersion == version && $0.sealedKey != nil }
                guard users.isEmpty else {
                    throw CofferError.conflict("\(id) still seals \(users.count) data key version(s); run `coffer keys rotate --rewrap` first")
                }
                let kmsUsers = try await KMSKeyRepository(logger: Logger(label: "coffer.keys")).countSealed(kekVersion: version, on: session)
                guard kmsUsers == 0 else {
                    throw CofferError.conflict("\(id) still seals \(kmsUsers) KMS key version(s); run `coffer keys rotate --rewrap` first")
                }
                _ = try await lifecycle.eraseUnusedKeyEncryptionKeys(on: session)
                try await lifecycle.bumpGeneration(on: session)
                try await audit.record("keys.destroy", resource: "key:\(id)", space: "root", by: principal, on: session)
                return nil
            }
            guard let dek = try await keys.dataKeys(on: session).first(where: { $0.purpose == purpose && $0.version == version }) else {
                throw CofferError.notFound("key version \(id) does not exist")
            }
            if let running = try await lifecycle.jobs(running: true, on: session).first(where: { $0.kind == .destroy && $0.purpose == purpose && $0.version == version }) {
                return running
            }
            guard dek.state == .retired else {
                throw CofferError.conflict(dek.state == .active ? "\(id) is the active version; rotate first, then destroy it" : "\(id) is already destroyed")
            }
            // The audit trail is checked with the versions that coded and chained it.
            if purpose == DataKeyPurpose.audit.rawValue {
                let events = try await AuditRepository(logger: self.logger).countEvents(authenticatedBy: version, on: session)
                guard events == 0 else {
                    throw CofferError.conflict("\(id) authenticates \(events) audit event(s) and is kept so that `coffer audit verify` can check them")
                }
            }
            let total = purpose == DataKeyPurpose.database.rawValue ? try await lifecycle.countSealed(dekVersion: version, on: session) : 0
            let job = try await lifecycle.insertJob(purpose: purpose, version: version, total: total, requestedBy: principal.apiKeyID, on: session)
            try await audit.record("keys.destroy", resource: "key:\(id)", space: "root", by: principal, detail: "job=\(job.id) values=\(total)", on: session)
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
        let pending = try await database.withSession { try await lifecycle.jobs(running: true, on: $0) }
        var finished: [Int64] = []
        for job in pending.reversed() {
            let ran = try await database.withDedicatedSession { session -> Bool in
                guard try await lifecycle.tryLockJob(job.id, on: session) else { return false }
                do {
                    try await self.run(job, on: session, shouldStop: shouldStop)
                    try? await lifecycle.unlockJob(job.id, on: session)
                    return true
                } catch {
                    try? await lifecycle.unlockJob(job.id, on: session)
                    throw error
                }
            }
            if ran { finished.append(job.id) }
        }
        return finished
    }

    private func run(_ job: DestructionJobRecord, on session: StoreSession, shouldStop: @Sendable () -> Bool) async throws {
        // Another process may have finished it between listing and locking.
        guard try await lifecycle.job(id: job.id, on: session)?.state == .running else { return }
        if job.kind == .reseal {
            try await runReseal(job, on: session, shouldStop: shouldStop)
            return
        }
        logger.info("destruction job running", metadata: ["job": "\(job.id)", "key": "\(job.purpose)-v\(job.version)"])
        let version = job.version
        if job.purpose == DataKeyPurpose.database.rawValue {
            let lifecycle = self.lifecycle
            let finished = try await resealBatches(of: job, on: session, shouldStop: shouldStop) { session in
                let rows = try await lifecycle.lockCurrentValues(dekVersion: version, limit: self.batchSize, on: session)
                return rows.isEmpty ? try await lifecycle.lockHistoryValues(dekVersion: version, limit: self.batchSize, on: session) : rows
            }
            guard finished else { return }
        }
        // Final check with writers blocked: nothing names the version any more.
        let erased = try await inTransaction(on: session) {
            try await self.lifecycle.lockValueTables(on: session)
            guard try await self.lifecycle.countSealed(dekVersion: version, on: session) == 0 || job.purpose != DataKeyPurpose.database.rawValue else {
                return false
            }
            if job.purpose == DataKeyPurpose.integrity.rawValue { try await self.reauthenticateRows(madeBy: version, on: session) }
            try await self.lifecycle.eraseDataKey(purpose: job.purpose, version: version, on: session)
            try await self.lifecycle.finishJob(job.id, state: .completed, on: session)
            try await self.lifecycle.bumpGeneration(on: session)
            try await self.audit.record("keys.destroyed", resource: "key:\(job.purpose)-v\(version)", space: "root", by: .system,
                                        detail: "job=\(job.id)", on: session)
            return true
        }
        if erased {
            logger.info("destruction job completed", metadata: ["job": "\(job.id)", "key": "\(job.purpose)-v\(version)"])
            try await reload()
        }
    }

    /// Re-seals batches of values in format 2 under the active database key, each batch
    /// in a transaction of its own, until `lock` finds none. False when it stopped for
    /// shutdown (the job resumes on the next run).
    private func resealBatches(
        of job: DestructionJobRecord, on session: StoreSession, shouldStop: @Sendable () -> Bool,
        lock: @escaping @Sendable (StoreSession) async throws -> [SealedValueRow]
    ) async throws -> Bool {
        while true {
            let moved = try await inTransaction(on: session) {
                let rows = try await lock(session)
                guard !rows.isEmpty else { return 0 }
                var activeVersion: Int32?
                for row in rows {
                    let plaintext = try self.keyring.openConfigValue(try SealedValue(bytes: row.sealedValue), place: row.place)
                    let sealed = try self.keyring.sealConfigValue(plaintext, place: row.place)
                    if activeVersion != Int32(sealed.keyVersion) {
                        guard try await self.lifecycle.isActiveDataKey(purpose: DataKeyPurpose.database.rawValue, version: Int32(sealed.keyVersion), on: session),
                              job.kind == .reseal || sealed.keyVersion != UInt32(job.version)
                        else { throw StaleKeyring() }
                        activeVersion = Int32(sealed.keyVersion)
                    }
                    try await self.lifecycle.replaceSealed(row, sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), on: session)
                }
                try await self.lifecycle.addProgress(job: job.id, done: Int64(rows.count), on: session)
                return rows.count
            }
            if moved == 0 { return true }
            if shouldStop() {
                logger.info("key job paused for shutdown", metadata: ["job": "\(job.id)"])
                return false
            }
            if batchPause > .zero { try await Task.sleep(for: batchPause) }
        }
    }

    /// A reseal job: every config value still in sealed format 1 is sealed again in format 2;
    /// when none is left (checked with writers blocked), format 1 is retired: every replica
    /// reloads its keys and refuses format 1 from then on.
    private func runReseal(_ job: DestructionJobRecord, on session: StoreSession, shouldStop: @Sendable () -> Bool) async throws {
        logger.info("reseal job running", metadata: ["job": "\(job.id)"])
        let lifecycle = self.lifecycle
        let finished = try await resealBatches(of: job, on: session, shouldStop: shouldStop) { session in
            let rows = try await lifecycle.lockFormatV1CurrentValues(limit: self.batchSize, on: session)
            return rows.isEmpty ? try await lifecycle.lockFormatV1HistoryValues(limit: self.batchSize, on: session) : rows
        }
        guard finished else { return }
        let done = try await inTransaction(on: session) {
            try await self.lifecycle.lockValueTables(on: session)
            guard try await self.lifecycle.countFormatV1(on: session) == 0 else { return false }
            try await self.lifecycle.finishJob(job.id, state: .completed, on: session)
            try await self.lifecycle.bumpGeneration(on: session)
            try await self.audit.record("keys.resealed", resource: "keys", space: "root", by: .system, detail: "job=\(job.id)", on: session)
            return true
        }
        if done {
            logger.info("reseal job completed: sealed format 1 is retired", metadata: ["job": "\(job.id)"])
            try await reload()
        }
    }

    /// Starts re-sealing every config value still in sealed format 1 (written before format
    /// 2) in format 2, as a job that runs in the background of `coffer serve` (or of this
    /// command with `--wait`) and resumes after a kill. Until it finishes both formats open;
    /// then format 1 is refused. Starting it while one runs returns that one.
    public func reseal(by principal: Principal = .commandLine) async throws -> DestructionJobRecord {
        try await authorize(principal, action: "keys.reseal")
        let (lifecycle, audit, keyring) = (self.lifecycle, self.audit, self.keyring)
        return try await database.transaction { session in
            try await lifecycle.lockKeyChanges(on: session)
            if let running = try await lifecycle.jobs(running: true, on: session).first(where: { $0.kind == .reseal }) {
                return running
            }
            guard let active = keyring.activeVersion(of: .database) else {
                throw CofferError.unavailable("no active database data key is loaded")
            }
            let total = try await lifecycle.countFormatV1(on: session)
            let job = try await lifecycle.insertJob(kind: .reseal, purpose: DataKeyPurpose.database.rawValue, version: Int32(active),
                                                    total: total, requestedBy: principal.apiKeyID, on: session)
            try await audit.record("keys.reseal", resource: "keys", space: "root", by: principal, detail: "job=\(job.id) values=\(total)", on: session)
            return job
        }
    }

    /// A transaction on the job's own session; a stale keyring is reloaded before the
    /// error reaches the caller.
    private func inTransaction<T: Sendable>(on session: StoreSession, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await session.transaction { _ in try await body() }
        } catch {
            if error is StaleKeyring { try await reload() }
            throw error
        }
    }
}

extension KeyLifecycle {
    /// Gives every row whose code `integrity` key version `version` made a new code under
    /// the active version, before that version is erased (``RowIntegrity/authenticateRows(madeBy:on:)``).
    func reauthenticateRows(madeBy version: Int32, on session: StoreSession) async throws {
        try await RowIntegrity(keyring: keyring, logger: logger).authenticateRows(madeBy: version, on: session)
    }
}
