import CofferTestSupport
import Foundation
import Testing

/// A tamper-evident audit trail (database-compromise issue, point 3): audit events edited,
/// deleted or inserted with `psql` under a live `coffer serve` are found by
/// `coffer audit verify` (exit 1, one line naming the event) and by the service's own
/// periodic check (a metric and a log line); put back as they were, the trail verifies.
@Suite struct AuditTrailTests {
    /// Events in no checkpoint yet.
    static let unchained = """
        SELECT count(*) FROM audit_events
        WHERE writer_xid >= coalesce((SELECT xid_to FROM audit_checkpoints ORDER BY seq DESC LIMIT 1), '0'::xid8)
        """

    /// Whether `coffer audit verify`'s line names event `id` (chained or not yet).
    static func names(_ line: String, _ id: String) -> Bool {
        line.contains("audit event \(id) (") || line.contains("audit event \(id):")
    }

    /// The events an intact verdict counts, chained and not chained yet (other databases'
    /// open transactions on a shared server hold chaining back).
    static func counted(_ line: String) -> Int? {
        let numbers = line.split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
        return line.hasPrefix("audit trail intact: ") && numbers.count >= 2 ? numbers[0] + numbers[1] : nil
    }

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
                for _ in 0..<240 where try await cli.psql(Self.unchained) != "0" {
                    try await Task.sleep(for: .milliseconds(250))
                }
                #expect(try await cli.psql(Self.unchained) == "0")
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
            #expect(result.status == 0 && Self.counted(result.line) == chained, "\(result)")

            // 1. An event edited: named, by the command and by the service's periodic check.
            let edited = try await cli.psql("SELECT id FROM audit_events WHERE action = 'config.put' ORDER BY id LIMIT 1")
            let detail = try await cli.psql("SELECT detail FROM audit_events WHERE id = \(edited)")
            try await cli.psql("UPDATE audit_events SET detail = 'version=9' WHERE id = \(edited)")
            result = try await verify()
            #expect(result.status == 1 && Self.names(result.line, edited) && result.line.contains("edited"), "\(result)")
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

            // 2. An event deleted: it is named, from its checkpoint's list.
            let deleted = try await cli.psql("SELECT id FROM audit_events WHERE action = 'runtime_config.read' ORDER BY id LIMIT 1")
            try await cli.psql("CREATE TABLE kept AS SELECT * FROM audit_events WHERE id = \(deleted); DELETE FROM audit_events WHERE id = \(deleted)")
            result = try await verify()
            #expect(result.status == 1 && Self.names(result.line, deleted) && result.line.contains("deleted"), "\(result)")
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
            #expect(result.status == 1 && Self.names(result.line, forged) && result.line.contains("not written by Coffer"), "\(result)")
            // Deleted again together with the newest checkpoint that lists it: not detected, as documented.
            try await cli.psql("DELETE FROM audit_events WHERE id = \(forged); DELETE FROM audit_checkpoints WHERE seq = (SELECT max(seq) FROM audit_checkpoints)")
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
            #expect(result.status == 1 && Self.names(result.line, copied), "\(result)")

            let metrics = try await server.request("GET", "/metrics").raw
            let failures = metrics.split(separator: "\n").first { $0.hasPrefix("coffer_integrity_failures_total{table=\"audit_events\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") }
            #expect((failures ?? 0) >= 1, "\(failures.map(String.init) ?? "no metric")")
        }
    }

    /// An upgrade: the events stored before the audit chain get their writer's code from
    /// the `coffer migrate` that adds it, once, and the trail then verifies; an event
    /// inserted afterwards without a code is named.
    @Test func eventsStoredBeforeTheChainAreVouchedForOnceByMigrate() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            for name in ["a", "b", "c"] {
                #expect(try await cli.run(["api-keys", "create", "--name", name, "--role", "read"]).status == 0)
            }
            // The database as the previous release left it: migrations 0010 and 0009 undone.
            let migrations = TestEnvironment.repositoryRoot.appendingPathComponent("migrations")
            let dataPath = try String(contentsOf: migrations.appendingPathComponent("0005_data_path.sql"), encoding: .utf8)
            let oldPut = try #require(dataPath.range(of: "CREATE FUNCTION coffer_put_config_element(")).lowerBound
            try await cli.psql("""
                DROP FUNCTION coffer_put_config_element_bounded(text, text, text, uuid, text, text, boolean, bytea, integer, text, text, text, text, text, integer, integer, bytea, integer);
                DROP FUNCTION coffer_put_config_element(text, text, text, uuid, text, text, boolean, bytea, integer, text, text, text, text, text, integer, bytea, integer);
                DROP FUNCTION coffer_runtime_config(text, text, text, text, text, bytea, integer, uuid[]);
                ALTER TABLE spaces DROP COLUMN mac, DROP COLUMN mac_version;
                ALTER TABLE config_owners DROP COLUMN mac, DROP COLUMN mac_version;
                ALTER TABLE stack_context_attachments DROP COLUMN mac, DROP COLUMN mac_version;
                DELETE FROM schema_migrations WHERE name = '0010_tree_integrity.sql';
                ALTER TABLE audit_events DROP COLUMN mac, DROP COLUMN mac_version, DROP COLUMN writer_xid;
                DROP TABLE audit_checkpoints;
                DROP INDEX key_destruction_jobs_one_reseal;
                ALTER TABLE key_destruction_jobs DROP COLUMN kind;
                CREATE UNIQUE INDEX key_destruction_jobs_one_running ON key_destruction_jobs (purpose, version) WHERE state = 'running';
                DELETE FROM schema_migrations WHERE name = '0009_tamper_evidence.sql';
                """)
            try await cli.psql(String(dataPath[oldPut...]))
            try await cli.psql(try String(contentsOf: migrations.appendingPathComponent("0006_autoattach_audit.sql"), encoding: .utf8))
            try await cli.psql(try String(contentsOf: migrations.appendingPathComponent("0007_element_bound.sql"), encoding: .utf8))
            let events = Int(try await cli.psql("SELECT count(*) FROM audit_events")) ?? 0
            #expect(events >= 3)

            let upgrade = try await cli.run(["migrate"])
            #expect(upgrade.status == 0, "\(upgrade.stderr)")
            #expect(upgrade.stderr.contains("gave the audit events stored before the audit chain their codes"))
            #expect(try await cli.psql("SELECT count(*) FROM audit_events WHERE mac IS NULL") == "0")
            var verify = try await cli.run(["audit", "verify"])
            #expect(verify.status == 0 && Self.counted(verify.stdout) == events, "\(verify.stdout) \(verify.stderr)")

            let late = try await cli.psql("""
                INSERT INTO audit_events (actor, action, resource, request_id, outcome) VALUES ('cli', 'api_key.revoke', 'api_key:x', '', 'success')
                RETURNING id
                """)
            #expect(try await cli.run(["migrate"]).status == 0)
            verify = try await cli.run(["audit", "verify"])
            #expect(verify.status == 1 && Self.names(verify.stderr, late), "\(verify.stderr)")
        }
    }
}

