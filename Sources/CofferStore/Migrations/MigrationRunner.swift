import CofferMigrations
import Crypto
import CofferCrypto
import Logging
import PostgresNIO

/// Applies Coffer's SQL migrations in order, each in its own transaction, recording
/// each with its SHA-256 checksum in `schema_migrations`. An applied migration whose
/// text has changed since is an error, never silently skipped.
public struct MigrationRunner: Sendable {
    /// The PostgreSQL advisory lock held while migrating and setting up keys, so that
    /// many replicas can run `migrate` at once.
    public static let advisoryLockKey: Int64 = 0x436F_6666_6572_0001  // "Coffer" + 1

    public let migrations: [Migration]
    private let logger: Logger

    public init(migrations: [Migration] = CofferMigrations.all, logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// SHA-256 of a migration's SQL, lowercase hex.
    public static func checksum(of migration: Migration) -> String {
        Hex.encode(SHA256.hash(data: Array(migration.sql.utf8)))
    }

    /// The migrations not yet applied, in order.
    /// - Throws: ``MigrationError`` if an applied migration changed or is unknown.
    public func pending(on session: StoreSession) async throws -> [Migration] {
        let applied = try await appliedChecksums(on: session)
        let known = Set(migrations.map(\.name))
        if let unknown = applied.keys.sorted().first(where: { !known.contains($0) }) {
            throw MigrationError(reason: "the database has migration \(unknown) applied, which this version of Coffer does not know; run a newer Coffer")
        }
        var result: [Migration] = []
        for migration in migrations {
            if let checksum = applied[migration.name] {
                guard checksum == Self.checksum(of: migration) else {
                    throw MigrationError(reason: "migration \(migration.name) was applied with checksum \(checksum.prefix(12))… but its text has changed since; restore the original file")
                }
            } else {
                result.append(migration)
            }
        }
        return result
    }

    /// Applies every pending migration. Call with ``advisoryLockKey`` held.
    /// - Parameter afterEach: runs in each migration's own transaction, after its SQL, with
    ///   its name: work that must commit with the migration or not at all.
    /// - Returns: the names applied.
    @discardableResult
    public func apply(
        on session: StoreSession, afterEach: @Sendable (String, StoreSession) async throws -> Void = { _, _ in }
    ) async throws -> [String] {
        try await session.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        var applied: [String] = []
        for migration in try await pending(on: session) {
            logger.info("applying migration", metadata: ["migration": "\(migration.name)"])
            do {
                try await session.transaction { session in
                    for statement in SQLScript.statements(migration.sql) {
                        try await session.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                    }
                    try await afterEach(migration.name, session)
                    let checksum = Self.checksum(of: migration)
                    try await session.query(
                        "INSERT INTO schema_migrations (name, checksum) VALUES (\(migration.name), \(checksum))",
                        logger: logger
                    )
                }
            } catch {
                throw MigrationError(reason: "migration \(migration.name) failed: \(StoreError.map(error))")
            }
            applied.append(migration.name)
        }
        return applied
    }

    private func appliedChecksums(on session: StoreSession) async throws -> [String: String] {
        let exists = try await session.query(
            "SELECT to_regclass('schema_migrations') IS NOT NULL",
            logger: logger
        ).collect().first?.decode(Bool.self) ?? false
        guard exists else { return [:] }
        var result: [String: String] = [:]
        for try await (name, checksum) in try await session.query(
            "SELECT name, checksum FROM schema_migrations", logger: logger
        ).decode((String, String).self) {
            result[name] = checksum
        }
        return result
    }
}

/// The schema cannot be brought up to date.
public struct MigrationError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { reason }
}
