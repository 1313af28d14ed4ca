import CofferCore
import Hummingbird

/// Requires `Authorization: Bearer <JWT>` and puts the verified caller in the context.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let tokens: TokenService
    let metrics: Metrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let principal: Principal
        do {
            principal = try authenticate(request)
        } catch let error as CofferError {
            metrics.increment("coffer_tokens_rejected_total", [error.code])
            throw error
        }
        var context = context
        var withRequest = principal
        withRequest.requestID = context.requestID
        context.principal = withRequest
        context.logger[metadataKey: "api_key"] = "\(principal.apiKeyID)"
        return try await next(request, context)
    }

    private func authenticate(_ request: Request) throws -> Principal {
        guard let header = request.headers[.authorization] else {
            throw CofferError.unauthorized("a bearer token is required", code: "missing_token")
        }
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw CofferError.unauthorized("the Authorization header must be `Bearer <token>`", code: "missing_token")
        }
        return try tokens.verify(String(parts[1]).trimmingCharacters(in: .whitespaces))
    }
}

import Foundation
