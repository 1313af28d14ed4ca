import CofferCore
import Hummingbird
import HummingbirdCore
import Logging
import ServiceLifecycle

/// The HTTP application of one replica: the router over ``CofferServices``, with the
/// database pool and the domain's background work as its services. `coffer serve` runs
/// it; route tests drive the same application in-process.
public enum CofferApplication {
    public static func build(
        services: CofferServices, server: HTTPServerBuilder = .http1(),
        address: BindAddress = .hostname("127.0.0.1", port: 8080), logger: Logger
    ) -> some ApplicationProtocol {
        var background: [any Service] = []
        if let pool = services.database.client { background.append(pool) }
        background += services.backgroundWork
        return Application(
            router: CofferRouter.build(services: services),
            server: server,
            configuration: .init(address: address, serverName: nil),
            services: background,
            logger: logger
        )
    }
}

/// Builds Coffer's HTTP router: system routes, then `/api/v1` behind token auth.
enum CofferRouter {
    static func build(services: CofferServices) -> Router<AppRequestContext> {
        let router = Router(context: AppRequestContext.self)
        router.add(middleware: RequestLogMiddleware(metrics: services.metrics))
        router.add(middleware: ErrorMiddleware(metrics: services.metrics))
        SystemRoutes(services: services).register(on: router)
        let api = router.group("api/v1").add(middleware: AuthMiddleware(tokens: services.tokens))
        OwnerRoutes(services: services).register(on: api)
        AdminRoutes(services: services).register(on: api)
        KeyRoutes(services: services).register(on: api)
        KMSRoutes(services: services).register(on: api)
        return router
    }
}
