import Foundation
import Logging
import PostgresNIO

/// A row of `key_destruction_jobs`.
public struct DestructionJobRecord: Sendable, Equatable {
    public var id: Int64
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
    public func insertJob(purpose: String, version: Int32, total: Int64, requestedBy: String, on session: StoreSession) async throws -> DestructionJobRecord {
        let rows = try await session.query(
            """
            INSERT INTO key_destruction_jobs (purpose, version, state, total, requested_by)
            VALUES (\(purpose), \(version), 'running', \(total), \(requestedBy))
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

    static let jobColumns = "id, purpose, version, state, total, done, error, requested_by, created_at, updated_at, finished_at"

    func jobs(_ rows: PostgresRowSequence) async throws -> [DestructionJobRecord] {
        var result: [DestructionJobRecord] = []
        for try await row in rows {
            let (id, purpose, version, state, total, done, error, requestedBy, createdAt, updatedAt, finishedAt) =
                try row.decode((Int64, String, Int32, String, Int64, Int64, String, String, Date, Date, Date?).self)
            result.append(DestructionJobRecord(
                id: id, purpose: purpose, version: version, state: try .stored(state, in: "destruction job \(id)"), total: total, done: done, error: error,
                requestedBy: requestedBy, createdAt: createdAt, updatedAt: updatedAt, finishedAt: finishedAt
            ))
        }
        return result
    }
}
