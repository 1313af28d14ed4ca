import CofferTestSupport
import Foundation
import Testing

/// A tampered database grants no reach (database-compromise issue, point 1, for spaces,
/// stacks and contexts, and attachments): a space re-parented or a stack moved with `psql`
/// under a live `coffer serve` puts nothing of it in anybody's reach, and an attachment
/// inserted or edited, or a label added, with `psql` adds no values to a runtime config;
/// put back as Coffer wrote them, all are served again. Rows stored before they carried
/// codes are vouched for once, by `coffer migrate`.
@Suite struct TreeIntegrityTests {
    /// What the routes show of the world below, for one token.
    struct View {
        let server: ServeProcess
        let token: String

        func status(_ method: String, _ path: String, _ json: Any? = nil) async throws -> Int {
            try await server.request(method, path, token: token, json: json).status
        }

        func value(_ path: String) async throws -> String? {
            try await server.request("GET", path, token: token).body["value"] as? String
        }

        /// The ids a list route shows; the route must answer 200, so an empty set means
        /// nothing shown, not a refused request.
        func ids(_ path: String) async throws -> Set<String> {
            let reply = try await server.request("GET", path, token: token)
            #expect(reply.status == 200, "GET \(path): \(reply.status)")
            return Set((reply.body["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        }

        /// The runtime config's values by config id (nil when refused).
        func runtimeConfig(_ stack: String) async throws -> [String: String]? {
            let reply = try await server.request("GET", "/api/v1/stacks/\(stack)/runtime-config", token: token)
            guard reply.status == 200, let items = reply.body["items"] as? [[String: Any]] else { return nil }
            return Dictionary(uniqueKeysWithValues: items.compactMap { item in
                (item["id"] as? String).map { ($0, item["value"] as? String ?? "") }
            })
        }
    }

    @Test func spacesAndAttachmentsEditedOutsideCofferGrantNothing() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            func create(_ name: String, _ role: String, space: String = "root") async throws -> [String: String] {
                apiKeyJSON(try await cli.run(["api-keys", "create", "--name", name, "--role", role, "--space", space, "--format", "json"]))
            }
            let rootAdmin = try await create("root-admin", "admin")
            let rootWorker = try await create("root-worker", "worker")
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let root = View(server: server, token: try await server.token(for: rootAdmin))
            let worker = View(server: server, token: try await server.token(for: rootWorker))

            for space in ["prod", "dev"] {
                #expect(try await root.status("POST", "/api/v1/spaces", ["id": space, "name": space, "parent": "root"]) == 201)
            }
            let devAdmin = View(server: server, token: try await server.token(for: try await create("dev-admin", "admin", space: "dev")))
            let canary = "canary-\(UUID().uuidString)"
            #expect(try await root.status("POST", "/api/v1/stacks", ["id": "payments", "name": "Payments", "space": "prod"]) == 201)
            #expect(try await root.status("PUT", "/api/v1/stacks/payments/config/SECRET", ["type": "ENVIRONMENT_VARIABLE", "value": "\(canary)-secret"]) == 201)
            for context in ["shared", "other"] {
                #expect(try await root.status("POST", "/api/v1/contexts", ["id": context, "name": context, "space": "root"]) == 201)
                #expect(try await root.status("PUT", "/api/v1/contexts/\(context)/config/\(context.uppercased())",
                                              ["type": "ENVIRONMENT_VARIABLE", "value": "\(canary)-\(context)"]) == 201)
            }
            #expect(try await root.status("PUT", "/api/v1/stacks/payments/contexts/shared", ["priority": 5]) == 200)

            let element = "/api/v1/stacks/payments/config/SECRET"
            #expect(try await root.value(element) == "\(canary)-secret")
            #expect(try await devAdmin.status("GET", element) == 404)
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])

            // The space re-parented under `dev` in SQL: the SQL alone would now put `prod` in
            // the dev admin's reach. Nobody reaches it: its row no longer verifies.
            try await cli.psql("UPDATE spaces SET parent = 'dev' WHERE id = 'prod'")
            #expect(try await devAdmin.status("GET", "/api/v1/stacks/payments") == 404)
            #expect(try await devAdmin.status("GET", element) == 404)
            #expect(try await devAdmin.status("GET", "/api/v1/stacks/payments/config") == 404)
            #expect(try await devAdmin.status("GET", "/api/v1/spaces/prod") == 404)
            #expect(try await devAdmin.ids("/api/v1/stacks").isEmpty)
            #expect(try await devAdmin.ids("/api/v1/spaces") == ["dev"])
            #expect(try await devAdmin.status("PUT", element, ["type": "ENVIRONMENT_VARIABLE", "value": "overwritten"]) == 404)
            #expect(try await devAdmin.status("PUT", "/api/v1/stacks/payments/contexts/other", ["priority": 0]) == 404)
            #expect(try await devAdmin.runtimeConfig("payments") == nil)
            #expect(try await root.status("GET", element) == 404, "a forged space is absent for everyone")
            #expect(try await worker.runtimeConfig("payments") == nil)
            #expect(!(try await root.ids("/api/v1/stacks")).contains("payments"))

            // Put back as Coffer wrote it: served again, and the dev admin's write never landed.
            try await cli.psql("UPDATE spaces SET parent = 'root' WHERE id = 'prod'")
            #expect(try await root.value(element) == "\(canary)-secret")
            #expect(try await devAdmin.status("GET", element) == 404)
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])

            // A space inserted in SQL with a genuine row's code, and a stack's space chain
            // through it: nothing below it is reached.
            try await cli.psql("""
                INSERT INTO spaces (id, name, parent, mac, mac_version)
                SELECT 'rogue', 'rogue', 'dev', mac, mac_version FROM spaces WHERE id = 'prod';
                UPDATE spaces SET parent = 'rogue' WHERE id = 'prod';
                """)
            #expect(try await devAdmin.status("GET", element) == 404)
            #expect(try await devAdmin.ids("/api/v1/spaces") == ["dev"])
            try await cli.psql("UPDATE spaces SET parent = 'root' WHERE id = 'prod'")
            #expect(try await root.value(element) == "\(canary)-secret")

            // The stack itself moved to `dev` in SQL: absent for everyone until put back.
            try await cli.psql("UPDATE config_owners SET space = 'dev' WHERE id = 'payments'")
            #expect(try await devAdmin.status("GET", element) == 404)
            #expect(try await devAdmin.status("GET", "/api/v1/stacks/payments") == 404)
            #expect(try await devAdmin.ids("/api/v1/stacks").isEmpty)
            #expect(try await devAdmin.status("PUT", element, ["type": "ENVIRONMENT_VARIABLE", "value": "overwritten"]) == 404)
            #expect(try await devAdmin.runtimeConfig("payments") == nil)
            #expect(try await root.status("GET", element) == 404)
            #expect(try await worker.runtimeConfig("payments") == nil)
            try await cli.psql("UPDATE config_owners SET space = 'prod' WHERE id = 'payments'")
            #expect(try await root.value(element) == "\(canary)-secret")

            // A context labelled in SQL to attach itself to every stack: not attached.
            try await cli.psql("UPDATE config_owners SET labels = '{autoattach:*}' WHERE id = 'other'")
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])
            #expect(try await root.status("GET", "/api/v1/contexts/other") == 404)
            try await cli.psql("UPDATE config_owners SET labels = '{}' WHERE id = 'other'")
            #expect(try await root.status("GET", "/api/v1/contexts/other") == 200)

            // An attachment inserted in SQL, then given a genuine attachment's code: the
            // context's values are not added to the stack's runtime config.
            let attach = """
                INSERT INTO stack_context_attachments (stack_uuid, context_uuid, priority)
                SELECT s.uuid, c.uuid, 0 FROM config_owners s, config_owners c WHERE s.id = 'payments' AND c.id = 'other'
                """
            try await cli.psql(attach)
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])
            try await cli.psql("""
                UPDATE stack_context_attachments SET (mac, mac_version) = (
                    SELECT a.mac, a.mac_version FROM stack_context_attachments a JOIN config_owners c ON c.uuid = a.context_uuid WHERE c.id = 'shared')
                WHERE context_uuid = (SELECT uuid FROM config_owners WHERE id = 'other')
                """)
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])
            // A genuine attachment's priority edited: treated as absent too.
            try await cli.psql("UPDATE stack_context_attachments SET priority = 1 WHERE context_uuid = (SELECT uuid FROM config_owners WHERE id = 'shared')")
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret"])
            try await cli.psql("UPDATE stack_context_attachments SET priority = 5 WHERE context_uuid = (SELECT uuid FROM config_owners WHERE id = 'shared')")
            #expect(try await worker.runtimeConfig("payments") == ["SECRET": "\(canary)-secret", "SHARED": "\(canary)-shared"])
            // Attached through Coffer, the same context is served.
            #expect(try await root.status("PUT", "/api/v1/stacks/payments/contexts/other", ["priority": 0]) == 200)
            #expect(try await worker.runtimeConfig("payments")?["OTHER"] == "\(canary)-other")

            let metrics = try await server.request("GET", "/metrics").raw
            func failures(_ table: String) -> Int {
                metrics.split(separator: "\n").first { $0.hasPrefix("coffer_integrity_failures_total{table=\"\(table)\"}") }
                    .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            }
            #expect(failures("spaces") >= 1 && failures("stack_context_attachments") >= 2 && failures("config_owners") >= 2, "\(metrics)")
            let logged = server.log.contains("integrity failure: a space is in reach only through space rows")
            #expect(logged)
        }
    }

    /// An upgrade: spaces and attachments stored before they carried codes are reached and
    /// served after the `coffer migrate` that adds the codes, and only that one vouches.
    @Test func spacesAndAttachmentsStoredBeforeTheirCodesAreVouchedForOnceByMigrate() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let rootAdmin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let root = View(server: server, token: try await server.token(for: rootAdmin))
            #expect(try await root.status("POST", "/api/v1/spaces", ["id": "team", "name": "team", "parent": "root"]) == 201)
            #expect(try await root.status("POST", "/api/v1/stacks", ["id": "app", "name": "App", "space": "team"]) == 201)
            #expect(try await root.status("POST", "/api/v1/contexts", ["id": "base", "name": "Base", "space": "team"]) == 201)
            #expect(try await root.status("PUT", "/api/v1/contexts/base/config/BASE", ["type": "ENVIRONMENT_VARIABLE", "value": "base"]) == 201)
            #expect(try await root.status("PUT", "/api/v1/stacks/app/contexts/base", ["priority": 0]) == 200)
            server.stop()

            // The database as the previous release left it: no code columns on either table.
            try await cli.psql("""
                ALTER TABLE spaces DROP COLUMN mac, DROP COLUMN mac_version;
                ALTER TABLE stack_context_attachments DROP COLUMN mac, DROP COLUMN mac_version;
                ALTER TABLE config_owners DROP COLUMN mac, DROP COLUMN mac_version;
                DELETE FROM schema_migrations WHERE name = '0010_tree_integrity.sql';
                """)
            let upgrade = try await cli.run(["migrate"])
            #expect(upgrade.status == 0, "\(upgrade.stderr)")
            #expect(try await cli.psql("SELECT count(*) FROM spaces WHERE mac IS NULL AND id <> 'root'") == "0")
            #expect(try await cli.psql("SELECT count(*) FROM stack_context_attachments WHERE mac IS NULL") == "0")
            #expect(try await cli.psql("SELECT count(*) FROM config_owners WHERE mac IS NULL") == "0")
            try await cli.psql("INSERT INTO spaces (id, name, parent) VALUES ('late', 'late', 'root')")
            #expect(try await cli.run(["migrate"]).status == 0)
            #expect(try await cli.psql("SELECT count(*) FROM spaces WHERE mac IS NULL AND id <> 'root'") == "1", "a second migrate vouched for a row")

            let after = try ServeProcess(cli: cli)
            defer { after.cleanUp() }
            try await after.waitUntilHealthy()
            let view = View(server: after, token: try await after.token(for: rootAdmin))
            #expect(try await view.ids("/api/v1/spaces") == ["root", "team"])
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "worker", "--role", "worker", "--format", "json"]))
            let workerView = View(server: after, token: try await after.token(for: worker))
            #expect(try await workerView.runtimeConfig("app") == ["BASE": "base"])
        }
    }
}
