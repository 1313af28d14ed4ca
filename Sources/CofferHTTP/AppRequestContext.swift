import CofferCore
import Hummingbird
import NIOCore

/// The request context of Coffer's routes: Hummingbird's core storage plus the caller
/// once the auth middleware has verified its token.
public struct AppRequestContext: RequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by ``AuthMiddleware`` on every `/api/v1` route but token issuance.
    public var principal: Principal?
    /// Set by ``RequestLogMiddleware``: the caller's `X-Request-Id` if well-formed, else a new one.
    public var requestID: String
    /// The connection, kept so that its peer is read only by the routes that need it.
    private let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
        self.principal = nil
        self.requestID = ""
    }

    /// CONTRACT §3: a request body is at most 4 MiB.
    public var maxUploadSize: Int { 4 * 1024 * 1024 }

    /// The peer of the connection (a proxy's, behind one); nil in in-process tests.
    public var remoteAddress: SocketAddress? { channel.remoteAddress }

    /// The client address token requests are throttled by: the peer's IP address.
    var clientAddress: String {
        remoteAddress?.ipAddress ?? "unknown"
    }

    /// The verified caller; a route behind ``AuthMiddleware`` always has one.
    func requirePrincipal() throws -> Principal {
        guard let principal else { throw CofferError.missingToken("a bearer token is required") }
        return principal
    }
}
