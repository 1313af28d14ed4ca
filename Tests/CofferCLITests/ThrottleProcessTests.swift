import CofferTestSupport
import Foundation
import Testing

/// The token throttle of a real `coffer serve` over TCP, configured from its environment:
/// a client past its address's budget gets 429 with `Retry-After`, and a bad setting is
/// refused at start with exit 2 naming the variable.
@Suite struct ThrottleProcessTests {
    @Test func aClientAddressPastItsBudgetIsToldToWait() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let key = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "runner", "--role", "read", "--format", "json"]))
            let server = try ServeProcess(cli: cli, overrides: ["COFFER_TOKEN_RATE_PER_ADDRESS": "2/h", "COFFER_TOKEN_RATE_PER_KEY": "off"])
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let body = String(decoding: try JSONSerialization.data(withJSONObject: ["api_key_id": key["id"] ?? "", "api_key_secret": key["secret"] ?? ""]), as: UTF8.self)
            var answers: [String] = []
            for _ in 0..<3 {
                let result = try await server.curl(["-i", "-X", "POST", "-H", "Content-Type: application/json", "--data-binary", body,
                                                    "\(server.baseURL)/api/v1/auth/token"])
                answers.append(result.stdout)
            }
            let statuses = answers.map { $0.split(separator: " ", maxSplits: 2).dropFirst().first.map(String.init) ?? "" }
            #expect(statuses == ["200", "200", "429"], "\(statuses)")
            let refused = answers.last ?? ""
            let retryAfter = refused.split(separator: "\r\n").first { $0.lowercased().hasPrefix("retry-after:") }
                .flatMap { Int($0.dropFirst("retry-after:".count).trimmingCharacters(in: .whitespaces)) }
            #expect(retryAfter.map { (1...1800).contains($0) } == true, "Retry-After missing or out of range")
            let named = refused.contains("too_many_requests") && refused.contains("COFFER_TOKEN_RATE_PER_ADDRESS=2/h")
            #expect(named, "the 429 does not name its bound")

            let bad = try await cli.run(["serve"], overrides: ["COFFER_TOKEN_RATE_PER_KEY": "lots", "COFFER_HTTP_PORT": "\(try TestEnvironment.freePort())"])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("COFFER_TOKEN_RATE_PER_KEY"), "\(bad.stderr)")
        }
    }
}
