import CofferCrypto
import CofferKeys
import CofferStore
import Dispatch
import Foundation
import Synchronization

/// Issues RS256 access tokens and verifies them locally with the public key(s).
///
/// Verification refuses, before any signature check, a token whose `alg` is not RS256
/// or whose `kid` is not a key Coffer publishes; then it checks the signature and every
/// claim. A verified token is cached until its `exp`, so the RSA verification is paid
/// once per token rather than once per request.
public final class TokenService: Sendable {
    /// A JWK Set, as `/.well-known/jwks.json` serves it.
    public struct JWKSet: Codable, Sendable {
        public let keys: [JWK]
    }

    /// A token just issued.
    public struct Issued: Sendable {
        public let token: String
        public let expiresAt: Date
    }

    private let signer: any TokenSigner
    private let verificationKeys: [String: RSAPublicKey]
    private let issuer: String
    private let audience: String
    private let lifetime: Int
    /// Tolerated clock difference between replicas for `nbf` and `iat`.
    private let leeway: Int64 = 30
    let cache: VerifiedTokenCache
    /// Keys whose tokens are refused even before they expire.
    private let revocations: RevocationList?
    /// Bearer token verifications and the time spent in them (monotonic clock), so the
    /// share of authentication in the cost of a request can be read off `/metrics`.
    private let verifications = Atomic<UInt64>(0)
    private let verificationNanoseconds = Atomic<UInt64>(0)

    /// - Parameters:
    ///   - signer: signs new tokens (a local RSA key, or KMS).
    ///   - additionalVerificationKeys: older public keys whose tokens may still be valid.
    ///   - lifetime: seconds from issue to expiry.
    ///   - revocations: revoked API keys, whose tokens are refused.
    ///   - cacheLimit: verified tokens kept (least recently used ones go first).
    public init(signer: any TokenSigner, additionalVerificationKeys: [RSAPublicKey] = [], issuer: String, audience: String, lifetime: Int,
                revocations: RevocationList? = nil, cacheLimit: Int = 50_000) {
        self.signer = signer
        self.cache = VerifiedTokenCache(limit: cacheLimit)
        self.revocations = revocations
        var keys: [String: RSAPublicKey] = [:]
        for key in [signer.publicKey] + additionalVerificationKeys { keys[key.jwkThumbprint] = key }
        self.verificationKeys = keys
        self.issuer = issuer
        self.audience = audience
        self.lifetime = lifetime
    }

    /// The published signing keys.
    public var jwks: JWKSet {
        JWKSet(keys: [signer.publicKey.jwk] + verificationKeys.values.filter { $0 != signer.publicKey }.map(\.jwk))
    }

    /// Issues a token for an authenticated API key.
    public func issue(for key: APIKeyRecord, now: Date = Date()) async throws -> Issued {
        guard let role = Role(rawValue: key.role) else { throw Self.unknownRole(key.id) }
        return try await issue(apiKeyID: key.id, space: key.space, role: role, now: now)
    }

    /// A stored key whose role this version does not know gets no token (never a default role).
    static func unknownRole(_ id: String) -> CofferError {
        CofferError.unknownRole("API key \(id) has a role this server does not know")
    }

    /// Issues a token for the API key `apiKeyID`, bound to its space and role.
    public func issue(apiKeyID: String, space: String, role: Role, now: Date = Date()) async throws -> Issued {
        let issuedAt = Int64(now.timeIntervalSince1970)
        let claims = TokenClaims(
            iss: issuer, aud: audience, sub: apiKeyID, iat: issuedAt, nbf: issuedAt,
            exp: issuedAt + Int64(lifetime), jti: UUID().uuidString.lowercased(), space: space, role: role.rawValue
        )
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = JWSHeader(alg: "RS256", typ: "JWT", kid: signer.publicKey.jwkThumbprint)
        let signingInput = try CompactJWS.signingInput(header: header, payload: try encoder.encode(claims))
        let signature: [UInt8]
        do {
            signature = try await signer.signRS256(Array(signingInput.utf8))
        } catch {
            throw SigningFailed(underlying: error)
        }
        return Issued(
            token: CompactJWS.serialize(signingInput: signingInput, signature: signature),
            expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp))
        )
    }

    /// Bearer token verifications since start and the seconds spent in them.
    public var verificationStats: (count: UInt64, seconds: Double) {
        (verifications.load(ordering: .relaxed), Double(verificationNanoseconds.load(ordering: .relaxed)) / 1e9)
    }

    /// Verifies a bearer token and returns its principal.
    /// - Throws: `unauthorized` with a code saying why; the token itself is never echoed.
    public func verify(_ token: String, now: Date = Date()) throws -> Principal {
        let started = DispatchTime.now().uptimeNanoseconds
        defer {
            verifications.add(1, ordering: .relaxed)
            verificationNanoseconds.add(DispatchTime.now().uptimeNanoseconds &- started, ordering: .relaxed)
        }
        let principal = try verifyCaching(token, now: now)
        if let revocations {
            // Fail closed: without a recent look at the revoked keys, no token is accepted.
            guard revocations.isCurrent else {
                throw CofferError.unavailable("revoked API keys cannot be checked right now; retry later")
            }
            if revocations.contains(principal.apiKeyID) {
                throw CofferError.tokenRevoked("the token's API key has been revoked")
            }
        }
        return principal
    }

    private func verifyCaching(_ token: String, now: Date) throws -> Principal {
        let nowSeconds = Int64(now.timeIntervalSince1970)
        if let cached = cache.principal(of: token) {
            guard cached.expiresAt > nowSeconds else {
                cache.remove(token)
                throw CofferError.tokenExpired("the token has expired")
            }
            return cached
        }
        let principal = try verifyUncached(token, now: nowSeconds)
        cache.insert(token, principal, now: nowSeconds)
        return principal
    }

    /// The header parameters and claims of the tokens Coffer issues: nothing else is accepted.
    static let headerMembers: Set<String> = ["alg", "typ", "kid"]
    static let claimMembers: Set<String> = ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "space", "role"]

    private func verifyUncached(_ token: String, now: Int64) throws -> Principal {
        let jws: CompactJWS
        do {
            jws = try CompactJWS(parsing: token)
        } catch {
            throw CofferError.invalidToken("the token is not a well-formed JWT")
        }
        guard jws.header.alg == "RS256" else {
            throw CofferError.invalidToken("the token's algorithm is not RS256")
        }
        guard let kid = jws.header.kid, let key = verificationKeys[kid] else {
            throw CofferError.invalidToken("the token's key id is not one of Coffer's signing keys")
        }
        guard key.verifyRS256(signature: jws.signature, message: jws.signingInput) else {
            throw CofferError.invalidToken("the token's signature does not verify")
        }
        // Only tokens shaped exactly as Coffer issues them (RFC 7515 §4.1.11, §5.2; RFC 7519 §4):
        // no header parameter or claim Coffer does not write (`crit` among them: Coffer
        // understands no extension), no member twice.
        guard let headerNames = try? FlatJSONObject.memberNames(jws.headerBytes),
              Self.headerMembers.isSuperset(of: headerNames), jws.header.typ == nil || jws.header.typ == "JWT"
        else {
            throw CofferError.invalidToken("the token's header is not one Coffer issues")
        }
        guard let claimNames = try? FlatJSONObject.memberNames(jws.payload), Set(claimNames) == Self.claimMembers else {
            throw CofferError.invalidToken("the token's claims are not the ones Coffer issues")
        }
        let claims: TokenClaims
        do {
            claims = try JSONDecoder().decode(TokenClaims.self, from: Data(jws.payload))
        } catch {
            throw CofferError.invalidToken("the token's claims are incomplete")
        }
        guard claims.exp - min(claims.iat, claims.nbf) <= Int64(CofferConfiguration.maximumTokenLifetime) else {
            throw CofferError.invalidToken("the token lives longer than Coffer issues tokens for")
        }
        guard claims.iss == issuer, claims.aud == audience else {
            throw CofferError.invalidToken("the token was issued for another issuer or audience")
        }
        guard claims.exp > now else {
            throw CofferError.tokenExpired("the token has expired")
        }
        guard claims.nbf <= now + leeway, claims.iat <= now + leeway else {
            throw CofferError.invalidToken("the token is not valid yet")
        }
        guard let role = Role(rawValue: claims.role), !claims.space.isEmpty, !claims.sub.isEmpty else {
            throw CofferError.invalidToken("the token's claims are invalid")
        }
        return Principal(apiKeyID: claims.sub, space: claims.space, role: role, tokenID: claims.jti, expiresAt: claims.exp)
    }
}

/// The signer failed (KMS `Sign` down, throttled or refused). Its detail (a key ARN, IAM
/// advice) is for the log only; the caller answers with a generic `unavailable`.
struct SigningFailed: Error {
    let underlying: any Error

    static let answer = CofferError.unavailable("tokens cannot be signed right now; retry later")
}
