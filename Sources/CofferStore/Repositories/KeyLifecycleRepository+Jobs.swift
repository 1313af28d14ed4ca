import Foundation
import Logging
import PostgresNIO

/// What a key job does.
public enum KeyJobKind: String, Sendable, Equatable {
    /// Re-seals every value under a retired data key version, then erases it.
    case destroy
    /// Re-seals every config value still in sealed format 1 in format 2, then retires format 1.
    case reseal
}

/// A row of `key_destruction_jobs`.
public struct DestructionJobRecord: Sendable, Equatable {
    public var id: Int64
    public var kind: KeyJobKind
    public var purpose: String
    public var version: Int32
    public var state: JobState
    public var total: Int64
    public var done: Int64
    public var error: String
    public var requestedBy: String
    public var createdAt: Date
    public var updatedAt: Date
    public var finishedAt: Date?
}

/// SQL for destruction jobs: their rows and the session lock of the replica running one.
extension KeyLifecycleRepository {
    public func insertJob(kind: KeyJobKind = .destroy, purpose: String, version: Int32, total: Int64, requestedBy: String, on session: StoreSession) async throws -> DestructionJobRecord {
        let rows = try await session.query(
            """
            INSERT INTO key_destruction_jobs (kind, purpose, version, state, total, requested_by)
            VALUES (\(kind.rawValue), \(purpose), \(version), 'running', \(total), \(requestedBy))
            RETURNING \(unescaped: Self.jobColumns)
            """,
            logger: logger
        )
        guard let job = try await jobs(rows).first else { throw StoreError(.failed, "the job was not created") }
        return job
    }

    /// Jobs, newest first; only running ones when `running` is set.
    public func jobs(running: Bool = false, limit: Int = 500, on session: StoreSession) async throws -> [DestructionJobRecord] {
        try await jobs(session.query(
            """
            SELECT \(unescaped: Self.jobColumns) FROM key_destruction_jobs
            WHERE (NOT \(running) OR state = 'running') ORDER BY id DESC LIMIT \(limit)
            """,
            logger: logger
        ))
    }

    public func job(id: Int64, on session: StoreSession) async throws -> DestructionJobRecord? {
        try await jobs(session.query("SELECT \(unescaped: Self.jobColumns) FROM key_destruction_jobs WHERE id = \(id)", logger: logger)).first
    }

    public func addProgress(job: Int64, done: Int64, on session: StoreSession) async throws {
        try await session.query(
            "UPDATE key_destruction_jobs SET done = done + \(done), updated_at = now() WHERE id = \(job)", logger: logger
        )
    }

    public func finishJob(_ job: Int64, state: JobState, error: String = "", on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE key_destruction_jobs SET state = \(state.rawValue), error = \(error), updated_at = now(), finished_at = now(),
                total = greatest(total, done)
            WHERE id = \(job)
            """,
            logger: logger
        )
    }

    /// Takes the job's session advisory lock if free. The caller must keep the connection
    /// for as long as it runs the job, and unlock it after.
    public func tryLockJob(_ job: Int64, on session: StoreSession) async throws -> Bool {
        try await session.query("SELECT pg_try_advisory_lock(710231, \(Int32(truncatingIfNeeded: job)))", logger: logger)
            .collect().first?.decode(Bool.self) ?? false
    }

    public func unlockJob(_ job: Int64, on session: StoreSession) async throws {
        try await session.query("SELECT pg_advisory_unlock(710231, \(Int32(truncatingIfNeeded: job)))", logger: logger)
    }

    /// Whether a reseal job has finished: every config value was sealed in format 2 then.
    /// False before migration 0009 (while an earlier migration loads the keys).
    public func formatV1Retired(on session: StoreSession) async throws -> Bool {
        let hasKinds = try await session.query(
            """
            SELECT EXISTS (SELECT 1 FROM pg_attribute
                           WHERE attrelid = to_regclass('key_destruction_jobs') AND attname = 'kind' AND NOT attisdropped)
            """,
            logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        guard hasKinds else { return false }
        return try await session.query(
            "SELECT EXISTS (SELECT 1 FROM key_destruction_jobs WHERE kind = 'reseal' AND state = 'completed')", logger: logger
        ).collect().first?.decode(Bool.self) ?? false
    }

    static let jobColumns = "id, kind, purpose, version, state, total, done, error, requested_by, created_at, updated_at, finished_at"

    func jobs(_ rows: PostgresRowSequence) async throws -> [DestructionJobRecord] {
        var result: [DestructionJobRecord] = []
        for try await row in rows {
            let (id, kind, purpose, version, state, total, done, error, requestedBy, createdAt, updatedAt, finishedAt) =
                try row.decode((Int64, String, String, Int32, String, Int64, Int64, String, String, Date, Date, Date?).self)
            guard let kind = KeyJobKind(rawValue: kind) else { throw StoreError(.unknownValue, "key job \(id) has an unknown kind `\(kind)`") }
            result.append(DestructionJobRecord(
                id: id, kind: kind, purpose: purpose, version: version, state: try .stored(state, in: "destruction job \(id)"), total: total, done: done, error: error,
                requestedBy: requestedBy, createdAt: createdAt, updatedAt: updatedAt, finishedAt: finishedAt
            ))
        }
        return result
    }
}
