import CofferCore
import CofferStore
import Hummingbird
import Logging

/// What the routes need: the domain services of a running Coffer.
public struct AppServices: Sendable {
    public let database: Database
    public let tokens: TokenService
    public let apiKeys: APIKeyService
    public let config: ConfigService
    /// KMS HTTP calls so far by `"<Action> <ok|error>"`; nil in rsa mode.
    public let kmsCallCounts: (@Sendable () -> [String: Int])?

    public init(database: Database, tokens: TokenService, apiKeys: APIKeyService, config: ConfigService,
                kmsCallCounts: (@Sendable () -> [String: Int])? = nil) {
        self.database = database
        self.tokens = tokens
        self.apiKeys = apiKeys
        self.config = config
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
        router.add(middleware: RequestLogMiddleware())
        router.add(middleware: ErrorMiddleware())
        SystemRoutes(services: services).register(on: router)
        let api = router.group("api/v1").add(middleware: AuthMiddleware(tokens: services.tokens))
        OwnerRoutes(services: services).register(on: api)
        return router
    }
}
