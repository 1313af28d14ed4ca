import CofferCore
import Hummingbird

/// Unauthenticated routes: liveness, readiness, the JWK Set and token issuance.
struct SystemRoutes {
    let services: AppServices

    func register(on router: Router<AppRequestContext>) {
        router.get("/healthz") { _, _ in
            StatusResponse(status: "ok")
        }
        router.get("/readyz") { _, _ in
            guard await services.isReady() else {
                throw CofferError.unavailable("not ready: the database is unreachable or keys are not loaded")
            }
            return StatusResponse(status: "ready")
        }
        router.get("/metrics") { _, _ in
            var lines = [
                "# HELP coffer_kms_requests_total KMS HTTP requests by action and outcome (each retry counts).",
                "# TYPE coffer_kms_requests_total counter",
            ]
            for (key, count) in (services.kmsCallCounts?() ?? [:]).sorted(by: { $0.key < $1.key }) {
                let parts = key.split(separator: " ")
                guard parts.count == 2 else { continue }
                lines.append("coffer_kms_requests_total{action=\"\(parts[0])\",outcome=\"\(parts[1])\"} \(count)")
            }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: lines.joined(separator: "\n") + "\n")))
        }
        router.get("/openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: PackageResources.openapi_yaml)))
        }
        router.get("/.well-known/jwks.json") { _, _ in
            JWKSetResponse(keys: services.tokens.jwks.keys)
        }
        router.post("/api/v1/auth/token") { request, context in
            let body = try await request.decodeStrict(as: TokenRequest.self, context: context)
            let issued = try await services.apiKeys.issueToken(
                id: body.apiKeyID, secret: body.apiKeySecret, tokens: services.tokens, requestID: context.requestID
            )
            context.logger.info("token issued", metadata: ["api_key": "\(body.apiKeyID)"])
            return TokenResponse(token: issued.token, expiresAt: issued.expiresAt)
        }
    }
}

struct StatusResponse: ResponseEncodable {
    let status: String
}

struct JWKSetResponse: ResponseEncodable {
    let keys: [CofferCrypto.JWK]
}

import CofferCrypto
