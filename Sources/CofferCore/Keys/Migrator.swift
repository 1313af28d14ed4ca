import CofferKeys
import CofferStore
import Logging

/// What `coffer migrate` does, under one advisory lock on one connection: prove the root
/// key against a stored key-encryption key (writing nothing if it is wrong), apply
/// pending migrations, then create the key hierarchy if none exists.
public struct Migrator: Sendable {
    /// What a run did.
    public struct Result: Sendable {
        public let appliedMigrations: [String]
        public let keys: KeyHierarchy.SetupOutcome
    }

    private let hierarchy: KeyHierarchy
    private let runner: MigrationRunner
    private let logger: Logger

    public init(root: any RootKeyProvider, previous: (any RootKeyProvider)? = nil, runner: MigrationRunner? = nil, logger: Logger) {
        self.hierarchy = KeyHierarchy(root: root, previous: previous, logger: logger)
        self.runner = runner ?? MigrationRunner(logger: logger)
        self.logger = logger
    }

    public func run(on database: Database) async throws -> Result {
        let (hierarchy, runner, logger) = (self.hierarchy, self.runner, self.logger)
        return try await database.withSession { session in
            try await session.withAdvisoryLock(MigrationRunner.advisoryLockKey) {
                try await hierarchy.verifyRoot(on: session)
                // The one moment rows without a code are trusted: the upgrade that adds the
                // codes' columns gives the rows that exist then a code, in that migration's
                // own transaction, so a failure leaves the migration to apply again.
                let applied = try await runner.apply(on: session) { name, session in
                    // Likewise the audit events written before events carried codes.
                    if name == Self.tamperEvidenceMigration, try await hierarchy.verifyRoot(on: session) {
                        let count = try await AuditChain.vouchForExisting(keyring: try await hierarchy.loadKeyring(on: session), logger: logger, on: session)
                        logger.warning("gave the audit events stored before the audit chain their codes (the upgrade that adds it)", metadata: ["events": "\(count)"])
                        return
                    }
                    if name == Self.treeIntegrityMigration, try await hierarchy.verifyRoot(on: session) {
                        let integrity = RowIntegrity(keyring: try await hierarchy.loadKeyring(on: session), logger: logger)
                        let count = try await integrity.authenticateTreeRows(madeBy: nil, on: session)
                        logger.warning("authenticated the spaces and attachments stored before they carried codes (the upgrade that adds them)", metadata: ["rows": "\(count)"])
                        return
                    }
                    guard name == Self.rowIntegrityMigration, try await hierarchy.verifyRoot(on: session),
                          try await hierarchy.ensurePurposes(on: session).contains(.integrity) else { return }
                    let integrity = RowIntegrity(keyring: try await hierarchy.loadKeyring(on: session), logger: logger)
                    let count = try await integrity.authenticateRows(madeBy: nil, on: session)
                    logger.warning("authenticated the rows stored before row integrity (the upgrade that adds it)", metadata: ["rows": "\(count)"])
                }
                let keys = try await hierarchy.ensure(on: session)
                // An integrity key missing after that was deleted: the new one vouches for
                // nothing, and rows without a valid code stay refused.
                try await session.transaction { session in
                    if try await hierarchy.ensurePurposes(on: session).contains(.integrity) {
                        logger.warning("the integrity key was missing and has been created anew; rows without a valid code stay refused (create their API keys again)")
                    }
                }
                return Result(appliedMigrations: applied, keys: keys)
            }
        }
    }

    /// The migration that adds authentication codes to rows (``RowIntegrity``).
    static let rowIntegrityMigration = "0008_row_integrity.sql"
    /// The migration that adds codes and the chain to audit events (``AuditChain``).
    static let tamperEvidenceMigration = "0009_tamper_evidence.sql"
    /// The migration that adds codes to spaces and attachments (``SpaceTree``).
    static let treeIntegrityMigration = "0010_tree_integrity.sql"

    /// Names of migrations not yet applied (for `serve`'s start-up check).
    public func pendingMigrations(on database: Database) async throws -> [String] {
        let runner = self.runner
        return try await database.withSession { try await runner.pending(on: $0).map(\.name) }
    }

    /// The hierarchy this migrator loads keys with (its unwrapped keys are cached).
    public var keyHierarchy: KeyHierarchy { hierarchy }

    /// Loads the keyring, proving the root key.
    public func loadKeyring(on database: Database) async throws -> Keyring {
        let hierarchy = self.hierarchy
        return try await database.transaction(.snapshot) { try await hierarchy.loadKeyring(on: $0) }
    }
}
