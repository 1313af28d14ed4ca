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
            await Self.sample(services)
            let text = services.metrics.render()
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
            let issued = try await services.apiKeys.issueToken(
                id: body.apiKeyID, secret: body.apiKeySecret, address: context.clientAddress, tokens: services.tokens,
                requestID: context.requestID
            )
            services.metrics.increment(.tokensIssued)
            context.logger.info("token issued", metadata: ["api_key": "\(body.apiKeyID)"])
            return TokenResponse(token: issued.token, expiresAt: issued.expiresAt)
        }
    }
}

extension SystemRoutes {
    /// Brings the series read at scrape time up to date: KMS calls, seal/open counts, key
    /// versions, token verification, database use and destruction job progress.
    static func sample(_ services: CofferServices) async {
        let metrics = services.metrics
        for (key, count) in services.kmsCallCounts?() ?? [:] {
            let parts = key.split(separator: " ")
            guard parts.count == 2 else { continue }
            metrics.sample(.kmsRequests, [String(parts[0]), String(parts[1])], count: count)
        }
        let counts = services.keyring.counts
        metrics.sample(.valuesSealed, count: Int(counts.sealed))
        metrics.sample(.valuesOpened, count: Int(counts.opened))
        for purpose in DataKeyPurpose.allCases {
            metrics.set(.dataKeyVersionsLoaded, [purpose.rawValue], to: Double(services.keyring.versions(of: purpose).count))
            if let active = services.keyring.activeVersion(of: purpose) {
                metrics.set(.dataKeyActiveVersion, [purpose.rawValue], to: Double(active))
            }
        }
        for (table, count) in services.integrity.failureCounts {
            metrics.sample(.integrityFailures, [table], count: count)
        }
        metrics.sample(.integrityFailures, ["config_elements"], count: Int(services.keyring.refusedValueCount))
        metrics.sample(.integrityFailures, ["audit_events"], count: services.auditChain.forgedEventsChained)
        switch services.auditChain.lastVerification {
        case .intact: metrics.set(.auditTrailIntact, to: 1)
        case .broken: metrics.set(.auditTrailIntact, to: 0)
        case nil: break
        }
        let verification = services.tokens.verificationStats
        metrics.sample(.tokenVerifications, count: Int(verification.count))
        metrics.sample(.tokenVerificationSeconds, sum: verification.seconds)
        let usage = services.database.usage
        metrics.set(.databaseConnectionsInUse, to: Double(usage.inUse))
        metrics.sample(.databaseOperations, ["ok"], count: usage.operations - usage.failures)
        metrics.sample(.databaseOperations, ["error"], count: usage.failures)
        if let jobs = try? await services.keys.jobs() {
            metrics.replaceGauges(.destructionJobValues, jobs.filter { $0.state == .running }.flatMap { job in
                let key = "\(job.purpose)-v\(job.version)"
                return [(labels: [key, "done"], value: Double(job.done)), (labels: [key, "total"], value: Double(job.total))]
            })
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
