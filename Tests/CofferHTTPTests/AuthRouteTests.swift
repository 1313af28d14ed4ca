import CofferCrypto
import CofferTestSupport
import Crypto
import Foundation
import Hummingbird
import Testing

@Suite struct AuthRouteTests {
    @Test func systemRoutesAnswerWithoutAToken() async throws {
        try await HTTPFixture.with { fixture in
            #expect(try await fixture.request(.get, "/healthz").status == .ok)
            #expect(try await fixture.request(.get, "/readyz").status == .ok)
            let jwks = try await fixture.request(.get, "/.well-known/jwks.json")
            #expect(jwks.status == .ok)
            let keys = jwks.json["keys"] as? [[String: Any]] ?? []
            #expect(keys.count == 1)
            #expect(keys.first?["kid"] as? String == TestKeys.primary.publicKey.jwkThumbprint)
            #expect(keys.first?["n"] as? String == Base64URL.encode(TestKeys.primary.publicKey.modulus))
            #expect(keys.first?["d"] == nil)
        }
    }

    @Test func tokenIssuanceChecksTheSecret() async throws {
        try await HTTPFixture.with { fixture in
            let created = try await fixture.apiKeys.create(name: "ci", space: "root", role: .read)
            let good = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": created.record.id, "api_key_secret": created.secret])
            #expect(good.status == .ok)
            #expect((good.json["token"] as? String)?.split(separator: ".").count == 3)
            #expect(good.json["expires_at"] is String)
            for (id, secret) in [(created.record.id, created.secret + "x"), (created.record.id, ""), ("ak_unknown", created.secret)] {
                let bad = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": id, "api_key_secret": secret])
                #expect(bad.status == .unauthorized)
                #expect(bad.errorCode == "invalid_credentials")
                #expect(!String(decoding: bad.body, as: UTF8.self).contains(created.secret))
            }
            let malformed = try await fixture.request(.post, "/api/v1/auth/token", rawBody: Data("{not json".utf8))
            #expect(malformed.status == .badRequest)
            #expect(malformed.errorCode != nil)
            try await fixture.apiKeys.revoke(id: created.record.id)
            let revoked = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": created.record.id, "api_key_secret": created.secret])
            #expect(revoked.status == .unauthorized)
        }
    }

    @Test func everyBadTokenIsA401WithTheJSONErrorBody() async throws {
        try await HTTPFixture.with { fixture in
            let valid = try await fixture.token(.admin)
            let parts = valid.split(separator: ".").map(String.init)
            let now = Int(Date().timeIntervalSince1970)
            func claims(exp: Int) -> String {
                #"{"iss":"coffer","aud":"coffer-api","sub":"ak_x","iat":\#(now - 7200),"nbf":\#(now - 7200),"exp":\#(exp),"jti":"j","space":"root","role":"admin"}"#
            }
            func signed(_ header: String, _ payload: String, _ sign: ([UInt8]) throws -> [UInt8]) rethrows -> String {
                let input = Base64URL.encode(Array(header.utf8)) + "." + Base64URL.encode(Array(payload.utf8))
                return input + "." + Base64URL.encode(try sign(Array(input.utf8)))
            }
            let kid = TestKeys.primary.publicKey.jwkThumbprint
            let expired = try signed(#"{"alg":"RS256","kid":"\#(kid)"}"#, claims(exp: now - 60)) { try TestKeys.primary.signRS256($0) }
            let tampered = parts[0] + "." + Base64URL.encode(Array(claims(exp: now + 3600).utf8)) + "." + parts[2]
            let none = Base64URL.encode(Array(#"{"alg":"none","kid":"\#(kid)"}"#.utf8)) + "." + Base64URL.encode(Array(claims(exp: now + 3600).utf8)) + "."
            let hs256 = signed(#"{"alg":"HS256","kid":"\#(kid)"}"#, claims(exp: now + 3600)) {
                Array(HMAC<SHA256>.authenticationCode(for: $0, using: SymmetricKey(data: Array(TestKeys.primary.publicKey.pem.utf8))))
            }
            let otherKey = try signed(#"{"alg":"RS256","kid":"\#(kid)"}"#, claims(exp: now + 3600)) { try TestKeys.other.signRS256($0) }

            let cases: [(String, String?, String?)] = [
                ("no token", nil, nil),
                ("basic auth", nil, "Basic YTpi"),
                ("empty bearer", nil, "Bearer "),
                ("garbage", "not-a-jwt", nil),
                ("expired", expired, nil),
                ("tampered", tampered, nil),
                ("alg none", none, nil),
                ("HS256 confusion", hs256, nil),
                ("other key", otherKey, nil),
            ]
            for (name, token, authorization) in cases {
                for route in ["/api/v1/stacks", "/api/v1/stacks/x/runtime-config", "/api/v1/contexts/y/config"] {
                    let reply = try await fixture.request(.get, route, token: token, authorization: authorization)
                    #expect(reply.status == .unauthorized, "\(name) on \(route)")
                    #expect(reply.errorCode != nil, "\(name): JSON error body")
                    if let token { #expect(!String(decoding: reply.body, as: UTF8.self).contains(token)) }
                }
            }
            #expect(try await fixture.request(.get, "/api/v1/stacks", token: valid).status == .ok)
            // The scheme is case-insensitive and blanks around the token do not matter.
            for header in ["bearer \(valid)", "BEARER \(valid)", "Bearer \t \(valid)\t"] {
                #expect(try await fixture.request(.get, "/api/v1/stacks", authorization: header).status == .ok, "\(header.prefix(8))")
            }
            for header in ["Bearer", "Bearer\t\(valid)", "Token \(valid)", "Bearer \(valid) extra"] {
                #expect(try await fixture.request(.get, "/api/v1/stacks", authorization: header).status == .unauthorized, "\(header.prefix(8))")
            }
        }
    }
}
