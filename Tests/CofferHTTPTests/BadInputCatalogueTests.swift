import CofferCore
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Testing

/// The bad-input catalogue: every route of openapi.yaml, each of its inputs (path
/// parameters, query parameters, the bearer token, the body and each body field) replaced
/// by malformed, oversized, wrongly typed, Unicode-confusable, NUL-containing and
/// injection-shaped values. Every answer must be a 4xx with the JSON error body, and no
/// error body may carry the secret the request held.
///
/// Injection-shaped and confusable text is bad input where the contract constrains a value
/// (ids, slugs, spaces, roles, types, variable names, file paths); in free text (names,
/// descriptions, values) it is ordinary text and is not in the catalogue.
@Suite struct BadInputCatalogueTests {
    static let secret = "SECRET-MARKER-7f3a"

    /// A route as openapi.yaml lists it.
    struct Route: Hashable, CustomStringConvertible {
        let method: String
        let path: String
        var paginated = false
        var description: String { "\(method) \(path)" }
        var parameters: [String] {
            path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
        }
    }

    static func routes() throws -> [Route] {
        let text = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        var routes: [Route] = []
        var inPaths = false
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("paths:") { inPaths = true; continue }
            guard inPaths else { continue }
            if let first = line.first, !first.isWhitespace { break }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                current = String(line.dropFirst(2).dropLast())
            } else if let current, line.hasPrefix("    "), !line.hasPrefix("     ") {
                let method = line.dropFirst(4).prefix { $0 != ":" }
                if ["get", "post", "put", "patch", "delete"].contains(method) {
                    routes.append(Route(method: method.uppercased(), path: current))
                }
            } else if line.contains("#/components/parameters/Limit"), !routes.isEmpty {
                routes[routes.count - 1].paginated = true
            }
        }
        return routes
    }

    /// A valid body for each route that takes one; the catalogue breaks it field by field.
    static func validBody(_ route: Route, apiKey: (id: String, secret: String)) -> [String: Any]? {
        switch (route.method, route.path) {
        case ("POST", "/api/v1/auth/token"): return ["api_key_id": apiKey.id, "api_key_secret": apiKey.secret]
        case ("POST", "/api/v1/stacks"), ("POST", "/api/v1/contexts"):
            return ["id": "fresh", "name": "Fresh", "space": "root", "labels": ["a"], "description": "d"]
        case ("PATCH", "/api/v1/stacks/{id}"), ("PATCH", "/api/v1/contexts/{id}"):
            return ["name": "Renamed", "labels": ["b"], "description": "d"]
        case ("PUT", "/api/v1/stacks/{id}/config/{configId}"), ("PUT", "/api/v1/contexts/{id}/config/{configId}"):
            return ["type": "ENVIRONMENT_VARIABLE", "value": secret, "write_only": true, "description": "d"]
        case ("PUT", "/api/v1/stacks/{id}/contexts/{contextId}"): return ["priority": 1]
        case ("POST", "/api/v1/spaces"): return ["id": "fresh-space", "name": "Fresh", "parent": "root"]
        case ("PATCH", "/api/v1/spaces/{spaceId}"): return ["name": "Renamed"]
        case ("POST", "/api/v1/api-keys"): return ["name": "k", "space": "root", "role": "read"]
        case ("POST", "/api/v1/keys/rotate"): return ["rewrap": false]
        case ("POST", "/api/v1/kms/keys"): return ["name": "fresh-key", "algorithm": "aes-256-gcm", "description": "d", "space": "root"]
        case ("PATCH", "/api/v1/kms/keys/{keyName}"): return ["description": "d", "min_decryption_version": 1, "enabled": true]
        case ("DELETE", "/api/v1/kms/keys/{keyName}"): return ["confirm": "k1"]
        case ("POST", "/api/v1/kms/keys/{keyName}/encrypt"):
            return ["plaintext": Data(secret.utf8).base64EncodedString(), "context": "Y3R4"]
        case ("POST", "/api/v1/kms/keys/{keyName}/decrypt"), ("POST", "/api/v1/kms/keys/{keyName}/rewrap"):
            return ["ciphertext": "coffer:v1:" + Data(repeating: 7, count: 40).base64EncodedString(), "context": "Y3R4"]
        case ("POST", "/api/v1/kms/keys/{keyName}/datakey"): return ["context": "Y3R4", "include_plaintext": true]
        default: return nil
        }
    }

    /// Fields whose values the contract constrains (slugs, names, enumerations).
    static let constrainedFields: Set<String> = ["id", "space", "parent", "role", "type", "api_key_id"]
    /// Write routes that take no body.
    static let bodylessWrites: Set<String> = [
        "POST /api/v1/stacks/{id}/config/{configId}/versions/{version}/restore",
        "POST /api/v1/contexts/{id}/config/{configId}/versions/{version}/restore",
        "POST /api/v1/kms/keys/{keyName}/rotate",
    ]
    /// Bodies whose fields are all optional, so `{}` is valid.
    static let optionalBodies: Set<String> = ["POST /api/v1/keys/rotate", "POST /api/v1/kms/keys/{keyName}/datakey"]

    static let badSegments: [(String, String)] = [
        ("NUL", "a%00b"), ("control character", "a%0A%0Db"), ("Cyrillic confusable", "%D1%95tack"),
        ("fullwidth letters", "%EF%BD%93%EF%BD%94"), ("right-to-left override", "a%E2%80%AEb"),
        ("zero-width joiner", "a%E2%80%8Db"), ("SQL injection", "x'%20OR%20'1'%3D'1"),
        ("path traversal", "..%2F..%2Fetc%2Fpasswd"), ("dot segment", ".."), ("template injection", "%24%7Bjndi%3Aldap%3A%2F%2Fx%7D"),
        ("invalid UTF-8", "%FF%FE"), ("broken percent-encoding", "%zz"), ("oversized", String(repeating: "a", count: 5000)),
    ]
    static let badVersions: [(String, String)] = [
        ("not a number", "abc"), ("negative", "-1"), ("zero", "0"), ("overflowing", "99999999999999999999"), ("fraction", "1.5"),
    ]
    static let badStrings: [(String, String)] = [
        ("NUL", "a\u{0}b"), ("Cyrillic confusable", "\u{0455}tack"), ("right-to-left override", "a\u{202E}b"),
        ("SQL injection", "x'; DROP TABLE stacks;--"), ("path traversal", "../../etc/passwd"),
        ("template injection", "${jndi:ldap://x}"), ("empty", ""), ("oversized", String(repeating: "a", count: 300_000)),
    ]
    static let badFreeText: [(String, String)] = [("NUL", "a\u{0}b"), ("oversized", String(repeating: "a", count: 300_000))]
    /// Labels are free text that decides auto-attachment: nothing invisible.
    static let badLabels: [(String, String)] = [
        ("NUL", "a\u{0}b"), ("empty", ""), ("oversized", String(repeating: "a", count: 300)), ("right-to-left override", "a\u{202E}b"),
        ("zero-width space", "pro\u{200B}d"), ("C1 control", "a\u{85}b"),
    ]
    static let badAuthorization: [(String, String)] = [
        ("oversized token", "Bearer " + String(repeating: "a", count: 20_000)), ("empty token", "Bearer "),
        ("three dots", "Bearer ..."), ("alg none", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."), ("basic", "Basic YTpi"),
    ]

    struct Case {
        let route: Route
        let input: String
        let uri: String
        var body: Data?
        var authorization: String?
    }

    @Test func everyRouteAnswersBadInputWithA4xxAndTheJSONErrorBody() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let created = try await fixture.apiKeys.create(name: "catalogue", space: "root", role: .read)
            let apiKey = (id: created.record.id, secret: created.secret)
            // Something behind every path parameter, so only the bad input can be wrong.
            for (path, body) in [("/api/v1/stacks", ["id": "s1", "name": "S", "space": "root"]),
                                 ("/api/v1/contexts", ["id": "c1", "name": "C", "space": "root"]),
                                 ("/api/v1/spaces", ["id": "team", "name": "T", "parent": "root"]),
                                 ("/api/v1/kms/keys", ["name": "k1"])] {
                #expect(try await fixture.request(.post, path, token: admin, json: body).status == .created)
            }
            for owner in ["stacks/s1", "contexts/c1"] {
                #expect(try await fixture.request(.put, "/api/v1/\(owner)/config/VAR", token: admin,
                                                  json: ["type": "ENVIRONMENT_VARIABLE", "value": "v"]).status == .created)
            }
            let valid: [String: String] = ["id": "s1", "configId": "VAR", "version": "1", "contextId": "c1", "spaceId": "team",
                                           "apiKeyId": apiKey.id, "keyVersionId": "database-v1",
                                           "keyName": "k1"]

            let routes = try Self.routes()
            #expect(routes.count >= 40, "openapi.yaml lists \(routes.count) routes")
            var cases: [Case] = []
            var covered: Set<Route> = []
            for route in routes {
                func uri(_ replacing: String? = nil, with value: String = "") -> String {
                    var path = route.path
                    for parameter in route.parameters {
                        let concrete = parameter == replacing ? value : valid[parameter, default: "x"]
                        path = path.replacingOccurrences(of: "{\(parameter)}", with: concrete)
                    }
                    // Contexts own their config elements under their own id.
                    return path.hasPrefix("/api/v1/contexts/s1") ? path.replacingOccurrences(of: "/contexts/s1", with: "/contexts/c1") : path
                }
                let body = Self.validBody(route, apiKey: apiKey).map { try! JSONSerialization.data(withJSONObject: $0) }
                // A new write route needs its valid body here, or its fields go untested.
                if ["POST", "PUT", "PATCH"].contains(route.method), body == nil, !Self.bodylessWrites.contains(route.description) {
                    Issue.record("\(route) takes a body but the catalogue has no valid body for it")
                }
                func add(_ input: String, _ uri: String, body: Data?, authorization: String? = nil) {
                    cases.append(Case(route: route, input: input, uri: uri, body: body, authorization: authorization))
                    covered.insert(route)
                }
                // Path parameters.
                for parameter in route.parameters {
                    let values = parameter == "version" ? Self.badVersions + Self.badSegments : Self.badSegments
                    for (name, value) in values { add("{\(parameter)} \(name)", uri(parameter, with: value), body: body) }
                }
                // Query parameters of the list routes.
                if route.paginated {
                    for query in ["limit=abc", "limit=-1", "limit=0", "limit=100000", "limit=1e3", "cursor=%00", "cursor=not-a-cursor",
                                  "cursor=" + String(repeating: "A", count: 10_000)] {
                        add("?\(query.prefix(40))", uri() + "?" + query, body: nil)
                    }
                }
                if route.path == "/api/v1/audit-events" {
                    for query in ["since=yesterday", "until=2020-13-45T00:00:00Z", "actor=%00", "outcome=maybe", "since=%FF"] {
                        add("?\(query)", uri() + "?" + query, body: nil)
                    }
                }
                // The bearer token.
                if route.path.hasPrefix("/api/v1/"), route.path != "/api/v1/auth/token" {
                    for (name, value) in Self.badAuthorization { add("Authorization \(name)", uri(), body: body, authorization: value) }
                }
                // The body as a whole, then field by field.
                if let template = Self.validBody(route, apiKey: apiKey) {
                    var wholes: [(String, Data)] = [
                        ("truncated JSON", Data("{".utf8)), ("array", Data("[]".utf8)), ("null", Data("null".utf8)),
                        ("string", Data("\"text\"".utf8)), ("missing value", Data("{\"a\":}".utf8)), ("invalid UTF-8", Data([0x7b, 0xff, 0xfe, 0x7d])),
                        ("deep nesting", Data((String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8)),
                        ("over 4 MiB", Data(("{\"name\": \"" + String(repeating: "a", count: 4 * 1024 * 1024 + 10) + "\"}").utf8)),
                        ("unknown field", try JSONSerialization.data(withJSONObject: template.merging(["unexpected": 1]) { $1 })),
                        ("empty", Data()),
                    ]
                    if route.method != "PATCH", !Self.optionalBodies.contains(route.description) { wholes.append(("empty object", Data("{}".utf8))) }
                    for (name, data) in wholes { add("body \(name)", uri(), body: data) }
                    for (field, value) in template.sorted(by: { $0.key < $1.key }) {
                        var replacements: [(String, Any)] = []
                        switch value {
                        case is String:
                            replacements = [("a number", 12345), ("a boolean", true), ("an array", [] as [Any]), ("an object", [:] as [String: Any])]
                            replacements += (Self.constrainedFields.contains(field) ? Self.badStrings : Self.badFreeText).map { ($0.0, $0.1 as Any) }
                        case is Bool:
                            replacements = [("a string", "yes"), ("a number", 1), ("an array", [] as [Any])]
                        case is Int:
                            replacements = [("a string", "1"), ("a fraction", 1.5), ("a boolean", true), ("negative", -1),
                                            ("overflowing", 99_999_999_999_999_999_999.0)]
                        case is [Any]:
                            replacements = [("a string", "x"), ("numbers", [1, 2]), ("an object", [:] as [String: Any])]
                            replacements += Self.badLabels.map { ("an element \($0.0)", [$0.1] as Any) }
                        default: break
                        }
                        for (name, replacement) in replacements {
                            var broken = template
                            broken[field] = replacement
                            add("`\(field)` \(name)", uri(), body: try JSONSerialization.data(withJSONObject: broken))
                        }
                    }
                }
                if !covered.contains(route) {
                    // Public routes without input: junk in the query string must not matter.
                    let reply = try await fixture.request(HTTPRequest.Method(rawValue: route.method)!, uri() + "?%00=%FF&limit=-1")
                    #expect(reply.status.code < 500, "\(route) with a junk query answered \(reply.status)")
                    #expect(route.parameters.isEmpty && !route.path.hasPrefix("/api/v1/"), "\(route) has input but no catalogue entry")
                }
            }

            var failures: [String] = []
            for item in cases {
                let method = HTTPRequest.Method(rawValue: item.route.method)!
                let token = item.route.path == "/api/v1/auth/token" || item.authorization != nil ? nil : admin
                let reply = try await fixture.request(method, item.uri, token: token, rawBody: item.body, authorization: item.authorization)
                let error = reply.json["error"] as? [String: Any]
                var problems: [String] = []
                if !(400..<500).contains(reply.status.code) { problems.append("answered \(reply.status.code)") }
                if error?["code"] as? String == nil || error?["message"] as? String == nil { problems.append("no JSON error body") }
                if reply.text.contains(Self.secret) || reply.text.contains(apiKey.secret) { problems.append("the error body holds the secret") }
                if reply.body.contains(0) { problems.append("the error body holds a NUL") }
                if !problems.isEmpty {
                    failures.append("\(item.route) [\(item.input.prefix(60))]: \(problems.joined(separator: ", ")) \(reply.text.prefix(160))")
                }
            }
            #expect(failures.isEmpty, "\(failures.count) of \(cases.count) bad inputs:\n\(failures.joined(separator: "\n"))")
            #expect(cases.count > 1000)
            // The catalogue changed nothing: the fixtures are as they were.
            let element = try await fixture.request(.get, "/api/v1/stacks/s1/config/VAR", token: admin)
            #expect(element.json["value"] as? String == "v")
        }
    }
}
