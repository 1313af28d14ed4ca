import CofferCore
import Hummingbird
import Logging
import ServiceLifecycle

/// What the routes need: the domain services of a running Coffer.
public struct AppServices: Sendable {
    public let database: Database
    public let tokens: TokenService
    public let apiKeys: APIKeyService
    public let config: ConfigService
    public let spaces: SpaceService
    public let kms: KMSService
    public let audit: AuditLog
    /// Key lifecycle; nil where keys are managed elsewhere (tests of other routes).
    public let keys: KeyLifecycle?
    public let keyring: Keyring
    public let metrics = Metrics()
    /// KMS HTTP calls so far by `"<Action> <ok|error>"`; nil in rsa mode.
    public let kmsCallCounts: (@Sendable () -> [String: Int])?

    /// The services of one replica over `database`. `revocations` must be the list the
    /// token service checks.
    public init(database: Database, keyring: Keyring, tokens: TokenService, revocations: RevocationList, lifecycle: KeyLifecycle? = nil,
                logger: Logger, kmsCallCounts: (@Sendable () -> [String: Int])? = nil) {
        self.database = database
        self.tokens = tokens
        self.keys = lifecycle
        self.keyring = keyring
        self.apiKeys = APIKeyService(database: database, revocations: revocations, logger: logger)
        self.config = ConfigService(database: database, keyring: keyring, lifecycle: lifecycle, logger: logger)
        self.audit = AuditLog(database: database, logger: logger)
        self.spaces = SpaceService(database: database, audit: audit, logger: logger)
        self.kms = KMSService(database: database, keyring: keyring, lifecycle: lifecycle, logger: logger)
        self.kmsCallCounts = kmsCallCounts
    }

    /// Ready when the database answers; keys are loaded before the server starts.
    func isReady() async -> Bool {
        await database.ping()
    }
}

/// Builds Coffer's HTTP router: system routes, then `/api/v1` behind token auth.
public enum CofferRouter {
    public static func build(services: AppServices) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: RequestLogMiddleware(metrics: services.metrics))
        router.add(middleware: ErrorMiddleware())
        SystemRoutes(services: services).register(on: router)
        let api = router.group("api/v1").add(middleware: AuthMiddleware(tokens: services.tokens, metrics: services.metrics))
        OwnerRoutes(services: services).register(on: api)
        AdminRoutes(services: services).register(on: api)
        KeyRoutes(services: services).register(on: api)
        KMSRoutes(services: services).register(on: api)
        return router
    }
}

/// Keeps the revocation list of this replica current: refreshes it from the database
/// every ``RevocationList/pollInterval`` until the service group stops.
public struct RevocationPoller: Service {
    let revocations: RevocationList
    let database: Database
    let logger: Logger

    public init(revocations: RevocationList, database: Database, logger: Logger) {
        self.revocations = revocations
        self.database = database
        self.logger = logger
    }

    /// The list was loaded before serving, so the loop sleeps first.
    public func run() async throws {
        while !Task.isCancelled {
            try? await Task.sleep(for: RevocationList.pollInterval)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            do {
                try await revocations.refresh(from: database, logger: logger)
            } catch {
                logger.warning("could not refresh revoked API keys; retrying", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// Background key work of one replica, once a second: reload the keyring when another
/// process changed keys, run destruction jobs no other replica runs, and rotate data keys
/// older than the rotation period.
public struct KeyMaintenance: Service {
    let lifecycle: KeyLifecycle
    let rotationPeriod: Int?
    let logger: Logger

    public init(lifecycle: KeyLifecycle, rotationPeriod: Int?, logger: Logger) {
        self.lifecycle = lifecycle
        self.rotationPeriod = rotationPeriod
        self.logger = logger
    }

    public func run() async throws {
        var ticks = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await lifecycle.reloadIfChanged()
                if let rotationPeriod, ticks % 60 == 0 {
                    try await lifecycle.rotateExpiredDataKeys(olderThan: rotationPeriod)
                }
                try await lifecycle.runPendingJobs(shouldStop: { Task.isShuttingDownGracefully || Task.isCancelled })
            } catch {
                logger.warning("key maintenance failed; retrying", metadata: ["error": "\(error)"])
            }
            ticks += 1
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
