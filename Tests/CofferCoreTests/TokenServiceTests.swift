@testable import CofferCore
import CofferCrypto
import CofferKeys
import CofferStore
import CofferTestSupport
import Crypto
import Foundation
import Testing

@Suite struct TokenServiceTests {
    let root = RSARootKey(privateKey: TestKeys.primary)
    let key = APIKeyRecord(id: "ak_test", name: "t", space: "root", role: "write", secretHash: [])

    func service(lifetime: Int = 3600, issuer: String = "coffer", audience: String = "coffer-api") -> TokenService {
        TokenService(signer: root, issuer: issuer, audience: audience, lifetime: lifetime)
    }

    /// Signs arbitrary header and claims JSON with `sign`, to forge tokens.
    func forge(header: String, claims: String, sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
        let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(claims.utf8))
        return input + "." + Base64URL.encode(try sign(Array(input.utf8)))
    }

    func claims(exp: Int64? = nil, nbf: Int64? = nil, iss: String = "coffer", aud: String = "coffer-api", role: String = "admin") -> String {
        let now = Int64(Date().timeIntervalSince1970)
        return #"{"iss":"\#(iss)","aud":"\#(aud)","sub":"ak_x","iat":\#(now),"nbf":\#(nbf ?? now),"exp":\#(exp ?? now + 600),"jti":"j","space":"root","role":"\#(role)"}"#
    }

    var header: String { #"{"alg":"RS256","typ":"JWT","kid":"\#(TestKeys.primary.publicKey.jwkThumbprint)"}"# }

    func expectUnauthorized(_ token: String, _ service: TokenService, code: CofferError.Code = .invalidToken) {
        do {
            _ = try service.verify(token)
            Issue.record("token accepted")
        } catch let error as CofferError {
            #expect(error.kind == .unauthorized)
            #expect(error.code == code)
            let echoed = error.message.contains(token)  // a Bool: a failure prints no token
            #expect(!echoed)
        } catch {
            Issue.record("unexpected \(type(of: error))")
        }
    }

    @Test func issuedTokenVerifiesWithEveryClaim() async throws {
        let tokens = service()
        let issued = try await tokens.issue(for: key)
        let principal = try tokens.verify(issued.token)
        #expect(principal == Principal(apiKeyID: "ak_test", space: "root", role: .write, tokenID: principal.tokenID, expiresAt: principal.expiresAt))
        let jws = try CompactJWS(parsing: issued.token)
        #expect(jws.header.alg == "RS256")
        #expect(jws.header.kid == TestKeys.primary.publicKey.jwkThumbprint)
        let object = try JSONSerialization.jsonObject(with: Data(jws.payload)) as! [String: Any]
        #expect(Set(object.keys) == ["iss", "aud", "sub", "iat", "nbf", "exp", "jti", "space", "role"])
        #expect(abs(issued.expiresAt.timeIntervalSinceNow - 3600) < 5)
        // Verified again from the cache.
        #expect(try tokens.verify(issued.token) == principal)
    }

    @Test func expiredTokenIsRefused() async throws {
        let tokens = service()
        let issued = try await tokens.issue(for: key, now: Date().addingTimeInterval(-7200))
        expectUnauthorized(issued.token, tokens, code: .tokenExpired)
    }

    @Test func cachedTokenStillExpires() async throws {
        let tokens = service(lifetime: 60)
        let issued = try await tokens.issue(for: key)
        _ = try tokens.verify(issued.token)
        #expect(throws: CofferError.self) { try tokens.verify(issued.token, now: Date().addingTimeInterval(120)) }
    }

    @Test func tamperedTokensAreRefused() async throws {
        let tokens = service()
        let token = try await tokens.issue(for: key).token
        let parts = token.split(separator: ".").map(String.init)
        // Payload swapped for one with a stronger role, signature kept.
        let elevated = parts[0] + "." + Base64URL.encode(Array(claims(role: "admin").utf8)) + "." + parts[2]
        expectUnauthorized(elevated, tokens)
        // A character of the signature changed.
        var signature = Array(parts[2])
        signature[10] = signature[10] == "A" ? "B" : "A"
        expectUnauthorized(parts[0] + "." + parts[1] + "." + String(signature), tokens)
        expectUnauthorized(parts[0] + "." + parts[1] + ".", tokens)
        expectUnauthorized("garbage", tokens)
        expectUnauthorized("", tokens)
    }

    @Test func algNoneIsRefused() {
        let token = Base64URL.encode(Array(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + Base64URL.encode(Array(claims().utf8)) + "."
        expectUnauthorized(token, service())
        let withKid = forge(header: #"{"alg":"none","kid":"\#(TestKeys.primary.publicKey.jwkThumbprint)"}"#, claims: claims()) { _ in [] }
        expectUnauthorized(withKid, service())
    }

    /// The classic confusion: HS256 with the RSA public key as the HMAC secret.
    @Test func hs256ConfusionIsRefused() {
        let publicKey = TestKeys.primary.publicKey
        for secret in [Array(publicKey.pem.utf8), publicKey.spkiDER] {
            let token = forge(header: #"{"alg":"HS256","typ":"JWT","kid":"\#(publicKey.jwkThumbprint)"}"#, claims: claims()) { input in
                Array(HMAC<SHA256>.authenticationCode(for: input, using: SymmetricKey(data: secret)))
            }
            expectUnauthorized(token, service())
        }
    }

    @Test func unknownOrMissingKidIsRefusedEvenWithAValidSignature() throws {
        let sign: ([UInt8]) throws -> [UInt8] = { try TestKeys.primary.signRS256($0) }
        expectUnauthorized(try forge(header: #"{"alg":"RS256","kid":"someone-else"}"#, claims: claims(), sign: sign), service())
        expectUnauthorized(try forge(header: #"{"alg":"RS256"}"#, claims: claims(), sign: sign), service())
    }

    @Test func tokenSignedByAnotherKeyIsRefused() throws {
        let token = try forge(header: header, claims: claims()) { try TestKeys.other.signRS256($0) }
        expectUnauthorized(token, service())
    }

    @Test func wrongIssuerAudienceOrTimesAreRefused() throws {
        let sign: ([UInt8]) throws -> [UInt8] = { try TestKeys.primary.signRS256($0) }
        let now = Int64(Date().timeIntervalSince1970)
        expectUnauthorized(try forge(header: header, claims: claims(iss: "evil"), sign: sign), service())
        expectUnauthorized(try forge(header: header, claims: claims(aud: "other-api"), sign: sign), service())
        expectUnauthorized(try forge(header: header, claims: claims(nbf: now + 3600), sign: sign), service())
        expectUnauthorized(try forge(header: header, claims: claims(exp: now - 1), sign: sign), service(), code: .tokenExpired)
        expectUnauthorized(try forge(header: header, claims: claims(role: "superuser"), sign: sign), service())
        expectUnauthorized(try forge(header: header, claims: #"{"iss":"coffer","aud":"coffer-api","sub":"x"}"#, sign: sign), service())
        // A correctly signed token with valid claims passes: the checks above are not vacuous.
        #expect(throws: Never.self) { try self.service().verify(try self.forge(header: self.header, claims: self.claims(), sign: sign)) }
    }

    /// Signed by Coffer's own key, but shaped as Coffer never issues a token: refused
    /// (RFC 7515 §4.1.11 and §5.2, RFC 7519 §4). Each of these was accepted before.
    @Test func signedTokensShapedUnlikeCoffersAreRefused() throws {
        let sign: ([UInt8]) throws -> [UInt8] = { try TestKeys.primary.signRS256($0) }
        let kid = TestKeys.primary.publicKey.jwkThumbprint
        let now = Int64(Date().timeIntervalSince1970)
        let good = claims()
        // A critical extension Coffer does not understand.
        expectUnauthorized(try forge(header: #"{"alg":"RS256","typ":"JWT","kid":"\#(kid)","crit":["exp"]}"#, claims: good, sign: sign), service())
        // Any other header parameter, or another type.
        expectUnauthorized(try forge(header: #"{"alg":"RS256","typ":"JWT","kid":"\#(kid)","jku":"https://evil/jwks"}"#, claims: good, sign: sign), service())
        expectUnauthorized(try forge(header: #"{"alg":"RS256","typ":"at+jwt","kid":"\#(kid)"}"#, claims: good, sign: sign), service())
        // Longer than the longest lifetime Coffer issues (24 h).
        expectUnauthorized(try forge(header: header, claims: claims(exp: now + 25 * 3600), sign: sign), service())
        // A claim Coffer does not issue.
        let extra = good.dropLast() + #","admin":true}"#
        expectUnauthorized(try forge(header: header, claims: String(extra), sign: sign), service())
        // The same member twice: parsers keep the last one, so this read as an admin token.
        let twice = good.replacingOccurrences(of: #""role":"admin""#, with: #""role":"read","role":"admin""#)
        expectUnauthorized(try forge(header: header, claims: twice, sign: sign), service())
        let escaped = good.replacingOccurrences(of: #""role":"admin""#, with: #""role":"read","r\u006fle":"admin""#)
        expectUnauthorized(try forge(header: header, claims: escaped, sign: sign), service())
        // The same valid kid twice: only the duplicate check refuses this.
        expectUnauthorized(try forge(header: #"{"alg":"RS256","kid":"\#(kid)","kid":"\#(kid)"}"#, claims: good, sign: sign), service())
        // The checks are not vacuous: Coffer's own shape passes, with or without `typ`.
        #expect(throws: Never.self) { try self.service().verify(try self.forge(header: self.header, claims: good, sign: sign)) }
        #expect(throws: Never.self) { try self.service().verify(try self.forge(header: #"{"alg":"RS256","kid":"\#(kid)"}"#, claims: good, sign: sign)) }
    }

    /// A full cache drops its least recently used tokens, not everything: a flood of fresh
    /// tokens cannot make every client pay an RSA verification again.
    @Test func aFullCacheEvictsTheLeastRecentlyUsedTokens() async throws {
        let tokens = TokenService(signer: root, issuer: "coffer", audience: "coffer-api", lifetime: 600, cacheLimit: 10)
        var issued: [String] = []
        for index in 0..<10 {
            let key = APIKeyRecord(id: "ak_\(index)", name: "t", space: "root", role: "read", secretHash: [])
            issued.append(try await tokens.issue(for: key).token)
            _ = try tokens.verify(issued[index])
        }
        _ = try tokens.verify(issued[0])  // now the most recently used
        let late = try await tokens.issue(for: APIKeyRecord(id: "ak_late", name: "t", space: "root", role: "read", secretHash: []))
        _ = try tokens.verify(late.token)
        // Bools, so a failure prints no token.
        let (touchedKept, oldestGone, lateKept) = (tokens.cache.contains(issued[0]), !tokens.cache.contains(issued[1]), tokens.cache.contains(late.token))
        let restKept = issued[2...].allSatisfy { tokens.cache.contains($0) }
        #expect(tokens.cache.count == 10)
        #expect(touchedKept, "the token used last was evicted")
        #expect(oldestGone, "the least recently used token stayed")
        #expect(lateKept)
        #expect(restKept)
    }

    @Test func jwksPublishesTheSigningKeyByThumbprint() {
        let jwks = service().jwks
        #expect(jwks.keys.count == 1)
        #expect(jwks.keys[0].kid == TestKeys.primary.publicKey.jwkThumbprint)
        #expect(jwks.keys[0].alg == "RS256")
        #expect(jwks.keys[0].kty == "RSA")
    }
}
