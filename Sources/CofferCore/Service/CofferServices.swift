import CofferCrypto
import CofferKeys
import Logging
import ServiceLifecycle

/// The domain services of one Coffer process over one database, and the background work
/// a serving replica runs. Built only by ``build(_:database:checkingOn:logger:)``, which
/// `coffer serve`, the CLI commands that need the domain and every test fixture call, so
/// each of them runs the same wiring.
public struct CofferServices: Sendable {
    public let database: Database
    public let keyring: Keyring
    public let tokens: TokenService
    public let revocations: RevocationList
    public let apiKeys: APIKeyService
    public let owners: OwnerService
    public let elements: ConfigElementService
    public let attachments: AttachmentService
    public let runtimeConfig: RuntimeConfigResolver
    public let spaces: SpaceService
    public let kms: KMSService
    public let audit: AuditLog
    /// The tamper-evident audit trail: chaining and verification.
    public let auditChain: AuditChain
    public let keys: KeyLifecycle
    /// Authenticates the rows that decide who may do what, and counts those that fail.
    public let integrity: RowIntegrity
    public let metrics = Metrics()
    /// KMS HTTP calls so far by `"<Action> <ok|error>"`; nil in rsa mode.
    public let kmsCallCounts: (@Sendable () -> [String: Int])?
    let settings: CofferSettings
    let logger: Logger

    /// Checks the database on `setup` (`database` itself if nil): no migration pending, the
    /// root key unwraps the stored keys; then loads the keyring and the revoked API keys
    /// and wires every service over `database`. A pooled `database` answers only once its
    /// pool runs (as a service of the application), so `serve` and the route tests check on
    /// a single connection of their own, which also makes an unreachable database fail fast.
    public static func build(_ settings: CofferSettings, database: Database, checkingOn setup: Database? = nil, logger: Logger) async throws -> CofferServices {
        let setup = setup ?? database
        let migrator = Migrator(root: settings.root, previous: settings.previousRoot, logger: logger)
        let pending = try await migrator.pendingMigrations(on: setup)
        guard pending.isEmpty else {
            throw CofferError.migrationsPending("\(pending.count) migration(s) pending (\(pending.joined(separator: ", "))); run `coffer migrate` first")
        }
        // Read before loading: a change in between makes the first poll reload, never miss.
        let generation = try await KeyLifecycle.generation(on: setup, logger: logger)
        let keyring = try await migrator.loadKeyring(on: setup)
        let integrity = RowIntegrity(keyring: keyring, logger: logger)
        let revocations = RevocationList()
        try await revocations.refresh(from: setup, logger: logger, integrity: integrity)
        return CofferServices(
            settings: settings, database: database, migrator: migrator, keyring: keyring, generation: generation, revocations: revocations,
            integrity: integrity, logger: logger
        )
    }

    private init(
        settings: CofferSettings, database: Database, migrator: Migrator, keyring: Keyring, generation: Int64, revocations: RevocationList,
        integrity: RowIntegrity, logger: Logger
    ) {
        // One audit trail for every service, so repeated refusals are gathered across them.
        // One authenticated space tree for every service, so each replica loads it once.
        let tree = SpaceTree(integrity: integrity, logger: logger)
        let audit = AuditLog(database: database, keyring: keyring, tree: tree, refusals: RefusalAggregator(window: settings.limits.refusalWindow), logger: logger)
        let keys = KeyLifecycle(
            database: database, hierarchy: migrator.keyHierarchy, keyring: keyring, loadedGeneration: generation,
            batchSize: settings.destructionBatchSize, batchPause: settings.destructionBatchPause, audit: audit, logger: logger
        )
        self.settings = settings
        self.logger = logger
        self.database = database
        self.keyring = keyring
        self.revocations = revocations
        self.keys = keys
        self.tokens = TokenService(
            signer: settings.root, additionalVerificationKeys: settings.previousVerificationKeys, issuer: settings.issuer,
            audience: settings.audience, lifetime: settings.tokenLifetime, revocations: revocations
        )
        self.integrity = integrity
        self.apiKeys = APIKeyService(
            database: database, integrity: integrity, lifecycle: keys, revocations: revocations, audit: audit, tree: tree, throttle: TokenThrottle(limits: settings.limits), logger: logger
        )
        let config = ConfigParts(database: database, keyring: keyring, lifecycle: keys, audit: audit, tree: tree, limits: settings.limits, logger: logger)
        self.owners = OwnerService(parts: config)
        self.elements = ConfigElementService(parts: config)
        self.attachments = AttachmentService(parts: config)
        self.runtimeConfig = RuntimeConfigResolver(parts: config)
        self.audit = audit
        self.auditChain = AuditChain(database: database, keyring: keyring, logger: logger)
        self.spaces = SpaceService(database: database, audit: audit, tree: tree, lifecycle: keys, logger: logger)
        self.kms = KMSService(database: database, keyring: keyring, lifecycle: keys, audit: audit, integrity: integrity, tree: tree, logger: logger)
        self.kmsCallCounts = settings.kmsCallCounts
    }

    /// What a serving replica runs beside its HTTP server: the revocation refresh and the
    /// key maintenance (keyring reloads, destruction jobs, data key rotation) and the
    /// writing of gathered refusals.
    public var backgroundWork: [any Service] {
        [
            RevocationPoller(revocations: revocations, database: database, logger: logger),
            KeyMaintenance(lifecycle: keys, rotationPeriod: settings.dataKeyRotationPeriod, logger: logger),
            RefusalFlusher(audit: audit),
            AuditChainer(chain: auditChain, chainInterval: settings.limits.auditChainInterval,
                         verifyInterval: settings.limits.auditVerifyInterval, logger: logger),
        ]
    }

    /// Ready when the database answers; keys are loaded before the server starts.
    public func isReady() async -> Bool {
        await database.ping()
    }
}

/// What a Coffer process is built from: its root key, the token rules and the pace of its
/// background key work.
public struct CofferSettings: Sendable {
    /// Unwraps the key-encryption keys and signs tokens.
    public var root: any RootKeyProvider & TokenSigner
    /// The root that wrapped the keys before a root key migration (`PREVIOUS_ENCRYPTION_*`).
    public var previousRoot: (any RootKeyProvider)?
    /// Public keys of a previous RSA root, whose tokens stay valid until they expire.
    public var previousVerificationKeys: [RSAPublicKey]
    public var issuer: String
    public var audience: String
    /// Seconds from a token's issue to its expiry.
    public var tokenLifetime: Int
    public var destructionBatchSize: Int
    public var destructionBatchPause: Duration
    /// Seconds after which a data key version is rotated; nil never.
    public var dataKeyRotationPeriod: Int?
    public var kmsCallCounts: (@Sendable () -> [String: Int])?
    /// Throttles and bounds (defaults unless the environment sets them).
    public var limits: CofferLimits

    public init(
        root: any RootKeyProvider & TokenSigner, previousRoot: (any RootKeyProvider)? = nil, previousVerificationKeys: [RSAPublicKey] = [],
        issuer: String = "coffer", audience: String = "coffer-api", tokenLifetime: Int = 3600,
        destructionBatchSize: Int = 500, destructionBatchPause: Duration = .zero, dataKeyRotationPeriod: Int? = nil,
        kmsCallCounts: (@Sendable () -> [String: Int])? = nil, limits: CofferLimits = CofferLimits()
    ) {
        self.root = root
        self.previousRoot = previousRoot
        self.previousVerificationKeys = previousVerificationKeys
        self.issuer = issuer
        self.audience = audience
        self.tokenLifetime = tokenLifetime
        self.destructionBatchSize = destructionBatchSize
        self.destructionBatchPause = destructionBatchPause
        self.dataKeyRotationPeriod = dataKeyRotationPeriod
        self.kmsCallCounts = kmsCallCounts
        self.limits = limits
    }
}
