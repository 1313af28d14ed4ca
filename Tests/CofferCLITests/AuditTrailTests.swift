import CofferTestSupport
import Foundation
import Testing

/// A tamper-evident audit trail (database-compromise issue, point 3): audit events edited,
/// deleted or inserted with `psql` under a live `coffer serve` are found by
/// `coffer audit verify` (exit 1, one line naming the event) and by the service's own
/// periodic check (a metric and a log line); put back as they were, the trail verifies.
@Suite struct AuditTrailTests {
    @Test func eventsEditedDeletedOrInsertedInTheDatabaseAreNamed() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "worker", "--role", "worker", "--format", "json"]))
            let server = try ServeProcess(cli: cli, overrides: ["COFFER_AUDIT_CHAIN_INTERVAL": "1s", "COFFER_AUDIT_VERIFY_INTERVAL": "1s"])
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let token = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": admin["id"]!, "api_key_secret": admin["secret"]!]).body["token"] as? String)
            let workerToken = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": worker["id"]!, "api_key_secret": worker["secret"]!]).body["token"] as? String)
            #expect(try await server.request("POST", "/api/v1/stacks", token: token, json: ["id": "app", "name": "App"]).status == 201)
            // Audited actions running in parallel: the trail does not make writers wait in line.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<8 {
                    group.addTask {
                        let reply = try await server.request("PUT", "/api/v1/stacks/app/config/VALUE_\(index)", token: token,
                                                             json: ["type": "ENVIRONMENT_VARIABLE", "value": "v\(index)", "write_only": false])
                        #expect(reply.status == 201, "\(reply.raw)")
                        #expect(try await server.request("GET", "/api/v1/stacks/app/runtime-config", token: workerToken).status == 200)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await server.request("GET", "/api/v1/stacks/nope/runtime-config", token: workerToken).status == 404)

            func waitUntilChained() async throws {
                for _ in 0..<60 where try await cli.psql("SELECT count(*) FROM audit_events WHERE seq IS NULL") != "0" {
                    try await Task.sleep(for: .milliseconds(250))
                }
                #expect(try await cli.psql("SELECT count(*) FROM audit_events WHERE seq IS NULL") == "0")
            }
            func verify() async throws -> (status: Int32, line: String) {
                let result = try await cli.run(["audit", "verify"])
                return (result.status, (result.status == 0 ? result.stdout : result.stderr).trimmingCharacters(in: .whitespacesAndNewlines))
            }
            func intactMetric() async throws -> String? {
                let metrics = try await server.request("GET", "/metrics").raw
                return metrics.split(separator: "\n").first { $0.hasPrefix("coffer_audit_trail_intact ") }.map { String($0.split(separator: " ").last ?? "") }
            }
            try await waitUntilChained()
            let chained = Int(try await cli.psql("SELECT count(*) FROM audit_events")) ?? 0
            #expect(chained >= 20)
            #expect(try await cli.psql("SELECT count(*) FROM audit_events WHERE mac IS NULL") == "0")
            var result = try await verify()
            #expect(result.status == 0 && result.line.hasPrefix("audit trail intact: \(chained) event(s) chained"), "\(result)")

            // 1. An event edited: named, by the command and by the service's periodic check.
            let edited = try await cli.psql("SELECT id FROM audit_events WHERE action = 'config.put' ORDER BY id LIMIT 1")
            let detail = try await cli.psql("SELECT detail FROM audit_events WHERE id = \(edited)")
            try await cli.psql("UPDATE audit_events SET detail = 'version=9' WHERE id = \(edited)")
            result = try await verify()
            #expect(result.status == 1 && result.line.contains("audit event \(edited) ") && result.line.contains("edited"), "\(result)")
            #expect(!result.line.contains("\n"))
            var metric: String?
            for _ in 0..<40 {
                metric = try await intactMetric()
                if metric.flatMap(Double.init) == 0 { break }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(metric.flatMap(Double.init) == 0, "\(metric ?? "no metric")")
            #expect(server.log.contains("the audit trail is not intact"))
            try await cli.psql("UPDATE audit_events SET detail = '\(detail)' WHERE id = \(edited)")
            result = try await verify()
            #expect(result.status == 0, "\(result)")

            // 2. An event deleted from the middle: the next one is named.
            let deleted = try await cli.psql("SELECT id FROM audit_events WHERE action = 'runtime_config.read' ORDER BY seq LIMIT 1")
            let next = try await cli.psql("SELECT id FROM audit_events WHERE seq = (SELECT seq + 1 FROM audit_events WHERE id = \(deleted))")
            try await cli.psql("CREATE TABLE kept AS SELECT * FROM audit_events WHERE id = \(deleted); DELETE FROM audit_events WHERE id = \(deleted)")
            result = try await verify()
            #expect(result.status == 1 && result.line.contains("audit event \(next) ") && result.line.contains("deleted"), "\(result)")
            try await cli.psql("INSERT INTO audit_events SELECT * FROM kept; DROP TABLE kept")
            result = try await verify()
            #expect(result.status == 0, "\(result)")

            // 3. Events inserted: one as the intruder writes it, one with a genuine event's
            // codes copied onto it. Each is named, chained or not.
            let forged = try await cli.psql("""
                INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail)
                VALUES ('\(admin["id"]!)', 'root', 'config.delete', 'stack:app/config/VALUE_0', 'root', 'forged', 'success', '')
                RETURNING id
                """)
            result = try await verify()
            #expect(result.status == 1 && result.line.contains("audit event \(forged) ") && result.line.contains("not written by Coffer"), "\(result)")
            try await cli.psql("DELETE FROM audit_events WHERE id = \(forged)")  // the newest: not detected, as documented
            result = try await verify()
            #expect(result.status == 0, "\(result)")
            let copied = try await cli.psql("""
                INSERT INTO audit_events (actor, actor_space, action, resource, space, request_id, outcome, detail, mac, mac_version)
                SELECT actor, actor_space, 'config.delete', resource, space, request_id, outcome, detail, mac, mac_version
                FROM audit_events WHERE id = \(edited) RETURNING id
                """)
            // The service chains it (keeping its place) and counts it as an integrity failure.
            try await waitUntilChained()
            result = try await verify()
            #expect(result.status == 1 && result.line.contains("audit event \(copied) "), "\(result)")

            let metrics = try await server.request("GET", "/metrics").raw
            let failures = metrics.split(separator: "\n").first { $0.hasPrefix("coffer_integrity_failures_total{table=\"audit_events\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") }
            #expect((failures ?? 0) >= 1, "\(failures.map(String.init) ?? "no metric")")
        }
    }
}
