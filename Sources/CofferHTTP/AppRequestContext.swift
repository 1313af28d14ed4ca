import CofferCore
import Hummingbird

/// The request context of Coffer's routes: Hummingbird's core storage plus the caller
/// once the auth middleware has verified its token.
public struct AppRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``AuthMiddleware`` on every `/api/v1` route but token issuance.
    public var principal: Principal?
    /// Set by ``RequestLogMiddleware``: the caller's `X-Request-Id` if well-formed, else a new one.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.principal = nil
        self.requestID = ""
    }

    /// CONTRACT §3: a request body is at most 4 MiB.
    public var maxUploadSize: Int { 4 * 1024 * 1024 }

    /// The verified caller; a route behind ``AuthMiddleware`` always has one.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw CofferError.missingToken("a bearer token is required") }
        return principal
    }
}
