import CofferCore
import Hummingbird

/// Requires `Authorization: Bearer <JWT>` and puts the verified caller in the context.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tokens: TokenService

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw CofferError.unauthorized("a bearer token is required", code: "missing_token")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw CofferError.unauthorized("the Authorization header must be `Bearer <token>`", code: "missing_token")
        }
        var context = context
        var principal = try tokens.verify(String(parts[1]).trimmingCharacters(in: .whitespaces))
        principal.requestID = context.requestID
        context.principal = principal
        context.logger[metadataKey: "api_key"] = "\(principal.apiKeyID)"
        return try await next(request, context)
    }
}

import Foundation
