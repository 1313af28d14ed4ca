import CofferCore
import Hummingbird

/// Requires `Authorization: Bearer <JWT>` and puts the verified caller in the context.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tokens: TokenService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let principal = try authenticate(request)
        var context = context
        var withRequest = principal
        withRequest.requestID = context.requestID
        context.principal = withRequest
        context.logger[metadataKey: "api_key"] = "\(principal.apiKeyID)"
        return try await next(request, context)
    }

    private func authenticate(_ request: Request) throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw CofferError.missingToken("a bearer token is required")
        }
        // Split and trim on the UTF-8 bytes: Foundation's trimming bridges the whole
        // token through NSString, which cost more than the cached verification itself.
        let utf8 = header.utf8
        guard let space = utf8.firstIndex(of: UInt8(ascii: " ")),
              String(header[..<space]).lowercased() == "bearer" else {
            throw CofferError.missingToken("the Authorization header must be `Bearer <token>`")
        }
        let isBlank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        let rest = utf8[utf8.index(after: space)...]
        guard let first = rest.firstIndex(where: { !isBlank($0) }), let last = rest.lastIndex(where: { !isBlank($0) }) else {
            throw CofferError.missingToken("the Authorization header must be `Bearer <token>`")
        }
        return try tokens.verify(String(Substring(header.utf8[first...last])))
    }
}

import Foundation
