import CofferTestSupport
import Foundation
import Testing

/// Two `coffer serve` processes on one database, as two replicas behind a load balancer.
@Suite struct ReplicaTests {
    @Test func revokingAKeyOnOneReplicaRefusesItsTokensOnTheOtherWithinFiveSeconds() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"])
            let runner = try await cli.run(["api-keys", "create", "--name", "runner", "--role", "worker", "--format", "json"])
            let (adminKey, runnerKey) = (apiKeyJSON(admin), apiKeyJSON(runner))
            let first = try ServeProcess(cli: cli)
            defer { first.cleanUp() }
            let second = try ServeProcess(cli: cli)
            defer { second.cleanUp() }
            try await first.waitUntilHealthy()
            try await second.waitUntilHealthy()

            let adminToken = try await first.token(for: adminKey)
            let runnerToken = try await second.token(for: runnerKey)
            // The runner's token works on both replicas (and is now cached as verified on both).
            #expect(try await first.request("GET", "/api/v1/stacks", token: runnerToken).status == 200)
            #expect(try await second.request("GET", "/api/v1/stacks", token: runnerToken).status == 200)

            #expect(try await first.request("DELETE", "/api/v1/api-keys/\(runnerKey["id"]!)", token: adminToken).status == 204)
            // At once on the replica that revoked it.
            #expect(try await first.request("GET", "/api/v1/stacks", token: runnerToken).status == 401)
            // Within five seconds on the other one.
            var refused = false
            for _ in 0..<50 {
                let reply = try await second.request("GET", "/api/v1/stacks", token: runnerToken)
                if reply.status == 401 {
                    #expect((reply.body["error"] as? [String: Any])?["code"] as? String == "token_revoked")
                    refused = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(refused, "the revoked key's token still works on the other replica after 5 s")

            // A key revoked from the command line (a third process) is refused the same way.
            let adminOnSecond = try await second.token(for: adminKey)
            #expect(try await cli.run(["api-keys", "revoke", adminKey["id"]!]).status == 0)
            var adminRefused = false
            for _ in 0..<50 {
                if try await second.request("GET", "/api/v1/spaces", token: adminOnSecond).status == 401 { adminRefused = true; break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(adminRefused)
            first.stop()
            second.stop()
            for log in [first.log, second.log] {
                #expect(!log.contains(runnerToken) && !log.contains(runnerKey["secret"]!))
            }
        }
    }
}
