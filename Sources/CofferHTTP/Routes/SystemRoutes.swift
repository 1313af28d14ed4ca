import CofferCore
import Hummingbird

/// Unauthenticated routes: liveness, readiness, the JWK Set and token issuance.
struct SystemRoutes {
    let services: CofferServices

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
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            let text = services.metrics.render(extra: await Self.sampledMetrics(services))
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
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
            let issued: TokenService.Issued
            do {
                issued = try await services.apiKeys.issueToken(
                    id: body.apiKeyID, secret: body.apiKeySecret, tokens: services.tokens, requestID: context.requestID
                )
            } catch let error as CofferError {
                services.metrics.increment("coffer_tokens_rejected_total", [error.code.name])
                throw error
            }
            services.metrics.increment("coffer_tokens_issued_total")
            context.logger.info("token issued", metadata: ["api_key": "\(body.apiKeyID)"])
            return TokenResponse(token: issued.token, expiresAt: issued.expiresAt)
        }
    }
}

extension SystemRoutes {
    /// Gauges read at scrape time: KMS calls, seal/open counts, key versions, destruction
    /// job progress and database use.
    static func sampledMetrics(_ services: CofferServices) async -> [String] {
        var lines = [
            "# HELP coffer_kms_requests_total KMS HTTP requests by action and outcome (each retry counts).",
            "# TYPE coffer_kms_requests_total counter",
        ]
        for (key, count) in (services.kmsCallCounts?() ?? [:]).sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: " ")
            guard parts.count == 2 else { continue }
            lines.append("coffer_kms_requests_total\(Metrics.format(["action", "outcome"], [String(parts[0]), String(parts[1])])) \(count)")
        }
        let counts = services.keyring.counts
        lines += [
            "# HELP coffer_values_sealed_total Values sealed with a data key since start.",
            "# TYPE coffer_values_sealed_total counter",
            "coffer_values_sealed_total \(counts.sealed)",
            "# HELP coffer_values_opened_total Values opened with a data key since start.",
            "# TYPE coffer_values_opened_total counter",
            "coffer_values_opened_total \(counts.opened)",
            "# HELP coffer_data_key_versions_loaded Data key versions held in memory, by purpose.",
            "# TYPE coffer_data_key_versions_loaded gauge",
            "# HELP coffer_data_key_active_version The active data key version, by purpose.",
            "# TYPE coffer_data_key_active_version gauge",
        ]
        for purpose in DataKeyPurpose.allCases {
            lines.append("coffer_data_key_versions_loaded\(Metrics.format(["purpose"], [purpose.rawValue])) \(services.keyring.versions(of: purpose).count)")
            if let active = services.keyring.activeVersion(of: purpose) {
                lines.append("coffer_data_key_active_version\(Metrics.format(["purpose"], [purpose.rawValue])) \(active)")
            }
        }
        let verification = services.tokens.verificationStats
        lines += [
            "# HELP coffer_token_verifications_total Bearer tokens verified (from the cache or by signature).",
            "# TYPE coffer_token_verifications_total counter",
            "coffer_token_verifications_total \(verification.count)",
            "# HELP coffer_token_verification_seconds_total Time spent verifying bearer tokens.",
            "# TYPE coffer_token_verification_seconds_total counter",
            "coffer_token_verification_seconds_total \(verification.seconds)",
        ]
        let usage = services.database.usage
        lines += [
            "# HELP coffer_db_connections_in_use Database connections leased now.",
            "# TYPE coffer_db_connections_in_use gauge",
            "coffer_db_connections_in_use \(usage.inUse)",
            "# HELP coffer_db_operations_total Database operations (connection leases) and their failures.",
            "# TYPE coffer_db_operations_total counter",
            "coffer_db_operations_total\(Metrics.format(["outcome"], ["ok"])) \(usage.operations - usage.failures)",
            "coffer_db_operations_total\(Metrics.format(["outcome"], ["error"])) \(usage.failures)",
        ]
        if let jobs = try? await services.keys.jobs() {
            lines += [
                "# HELP coffer_destruction_job_values Values re-encrypted and to re-encrypt by running destruction jobs.",
                "# TYPE coffer_destruction_job_values gauge",
            ]
            for job in jobs where job.state == .running {
                let key = "\(job.purpose)-v\(job.version)"
                lines.append("coffer_destruction_job_values\(Metrics.format(["key", "kind"], [key, "done"])) \(job.done)")
                lines.append("coffer_destruction_job_values\(Metrics.format(["key", "kind"], [key, "total"])) \(job.total)")
            }
        }
        return lines
    }
}

struct StatusResponse: ResponseEncodable {
    let status: String
}

struct JWKSetResponse: ResponseEncodable {
    let keys: [CofferCrypto.JWK]
}

import CofferCrypto
