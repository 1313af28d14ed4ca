import CofferTestSupport
import Foundation
import Testing

/// A tampered database yields no login (database-compromise issue, point 1): API key rows
/// inserted, edited, copied or un-revoked with `psql` are refused by a live `coffer serve`,
/// counted and not listed; rows stored before row integrity are vouched for once, by the
/// `coffer migrate` that creates the integrity key.
@Suite struct RowIntegrityTests {
    static let forgedSecret = "cfs_" + String(repeating: "A", count: 43)

    @Test func apiKeyRowsWrittenOutsideCofferLogNobodyIn() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            func create(_ name: String, _ role: String) async throws -> [String: String] {
                apiKeyJSON(try await cli.run(["api-keys", "create", "--name", name, "--role", role, "--format", "json"]))
            }
            let admin = try await create("admin", "admin")
            let reader = try await create("reader", "read")
            let revoked = try await create("revoked", "read")
            let victim = try await create("victim", "admin")
            let untouched = try await create("untouched", "read")
            #expect(try await cli.run(["api-keys", "revoke", revoked["id"] ?? ""]).status == 0)

            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            // Bools, so that a failure prints no secret.
            func logsIn(_ id: String, _ secret: String) async throws -> Bool {
                try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": id, "api_key_secret": secret]).status == 200
            }
            func refused(_ id: String, _ secret: String) async throws -> Bool {
                let reply = try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": id, "api_key_secret": secret])
                return reply.status == 401 && (reply.body["error"] as? [String: Any])?["code"] as? String == "invalid_credentials"
            }
            let readerLogsIn = try await logsIn(reader["id"]!, reader["secret"]!)
            #expect(readerLogsIn)

            // A row inserted with a secret the intruder knows, then one with a real row's code.
            let forgedID = "ak_00112233445566778899"
            try await cli.psql("""
                INSERT INTO api_keys (id, name, space, role, secret_hash)
                VALUES ('\(forgedID)', 'forged', 'root', 'admin', sha256(convert_to('\(Self.forgedSecret)', 'UTF8')))
                """)
            let refused1 = try await refused(forgedID, Self.forgedSecret)
            #expect(refused1)
            try await cli.psql("UPDATE api_keys SET (mac, mac_version) = (SELECT mac, mac_version FROM api_keys WHERE id = '\(admin["id"]!)') WHERE id = '\(forgedID)'")
            let refused2 = try await refused(forgedID, Self.forgedSecret)
            #expect(refused2)
            // An existing key's role raised, a revoked key un-revoked, an admin key's secret replaced.
            try await cli.psql("UPDATE api_keys SET role = 'admin' WHERE id = '\(reader["id"]!)'")
            let refused3 = try await refused(reader["id"]!, reader["secret"]!)
            #expect(refused3)
            try await cli.psql("UPDATE api_keys SET revoked_at = NULL WHERE id = '\(revoked["id"]!)'")
            let refused4 = try await refused(revoked["id"]!, revoked["secret"]!)
            #expect(refused4)
            try await cli.psql("UPDATE api_keys SET secret_hash = sha256(convert_to('\(Self.forgedSecret)', 'UTF8')) WHERE id = '\(victim["id"]!)'")
            let refused5 = try await refused(victim["id"]!, Self.forgedSecret)
            #expect(refused5)
            // A row moved to another space.
            try await cli.psql("UPDATE api_keys SET space = 'elsewhere' WHERE id = '\(untouched["id"]!)'")
            let refused6 = try await refused(untouched["id"]!, untouched["secret"]!)
            #expect(refused6)
            try await cli.psql("UPDATE api_keys SET space = 'root' WHERE id = '\(untouched["id"]!)'")
            let restored = try await logsIn(untouched["id"]!, untouched["secret"]!)
            #expect(restored, "putting the row back makes it verify again")

            let token = try await server.token(for: admin)
            let listed = try await server.request("GET", "/api/v1/api-keys?limit=500", token: token)
            let ids = Set((listed.body["items"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
            #expect(ids.contains(admin["id"]!) && ids.contains(untouched["id"]!))
            #expect(!ids.contains(forgedID) && !ids.contains(reader["id"]!) && !ids.contains(victim["id"]!), "\(ids)")
            let cliList = try await cli.run(["api-keys", "list"])
            #expect(cliList.status == 0 && !cliList.stdout.contains(forgedID))

            let metrics = try await server.request("GET", "/metrics").raw
            let failures = metrics.split(separator: "\n").first { $0.hasPrefix("coffer_integrity_failures_total{table=\"api_keys\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") }
            #expect((failures ?? 0) >= 6, "\(failures.map(String.init) ?? "no metric")")
            #expect(server.log.contains("integrity failure"))
            let events = try await server.request("GET", "/api/v1/audit-events?action=token.issue&outcome=failure&limit=500", token: token)
            let details = (events.body["items"] as? [[String: Any]] ?? []).compactMap { $0["detail"] as? String }
            #expect(details.contains("integrity check failed"), "\(details)")
        }
    }

    /// An upgrade: keys stored before row integrity log in after the `coffer migrate` that
    /// adds the codes; a row inserted without a code afterwards does not, and neither does
    /// any old row once the integrity key is deleted (a new one vouches for nothing).
    @Test func keysStoredBeforeRowIntegrityAreVouchedForOnceByMigrate() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let old = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "old", "--role", "read", "--format", "json"]))
            // The database as the previous release left it: no code columns, no integrity key.
            try await cli.psql("""
                ALTER TABLE api_keys DROP COLUMN mac, DROP COLUMN mac_version;
                ALTER TABLE kms_keys DROP COLUMN mac, DROP COLUMN mac_version;
                DELETE FROM schema_migrations WHERE name = '0008_row_integrity.sql';
                DELETE FROM data_encryption_keys WHERE purpose = 'integrity';
                """)
            let upgrade = try await cli.run(["migrate"])
            #expect(upgrade.status == 0, "\(upgrade.stderr)")
            #expect(try await cli.psql("SELECT count(*) FROM api_keys WHERE mac IS NULL") == "0")
            #expect(try await cli.psql("SELECT count(*) FROM data_encryption_keys WHERE purpose = 'integrity'") == "1")
            let lateID = "ak_99887766554433221100"
            try await cli.psql("""
                INSERT INTO api_keys (id, name, space, role, secret_hash)
                VALUES ('\(lateID)', 'late', 'root', 'admin', sha256(convert_to('\(Self.forgedSecret)', 'UTF8')))
                """)
            #expect(try await cli.run(["migrate"]).status == 0)
            #expect(try await cli.psql("SELECT count(*) FROM api_keys WHERE mac IS NULL") == "1", "a second migrate vouched for a row")

            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let oldLogsIn = try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": old["id"]!, "api_key_secret": old["secret"]!]).status == 200
            #expect(oldLogsIn)
            #expect(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": lateID, "api_key_secret": Self.forgedSecret]).status == 401)
            server.stop()

            // Deleting the integrity key to have the next migrate vouch for forged rows fails:
            // the new key vouches for nothing.
            try await cli.psql("UPDATE api_keys SET mac = NULL, mac_version = NULL; DELETE FROM data_encryption_keys WHERE purpose = 'integrity'")
            #expect(try await cli.run(["migrate"]).status == 0)
            #expect(try await cli.psql("SELECT count(*) FROM api_keys WHERE mac IS NULL") == "2")
            let after = try ServeProcess(cli: cli)
            defer { after.cleanUp() }
            try await after.waitUntilHealthy()
            let oldRefused = try await after.request("POST", "/api/v1/auth/token", json: ["api_key_id": old["id"]!, "api_key_secret": old["secret"]!]).status == 401
            #expect(oldRefused)
        }
    }

    /// A key revoked and then un-revoked in SQL: a replica that starts afterwards refuses
    /// the tokens issued before the revocation, as the replica that saw it does.
    @Test func aRevocationUndoneInTheDatabaseHoldsForANewReplica() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let key = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "runner", "--role", "read", "--format", "json"]))
            let first = try ServeProcess(cli: cli)
            defer { first.cleanUp() }
            try await first.waitUntilHealthy()
            let token = try await first.token(for: key)
            #expect(try await first.request("GET", "/api/v1/stacks", token: token).status == 200)
            #expect(try await cli.run(["api-keys", "revoke", key["id"] ?? ""]).status == 0)
            // The running replica learns of the revocation within its 2 s poll.
            var firstRefuses = false
            for _ in 0..<100 where !firstRefuses {
                firstRefuses = try await first.request("GET", "/api/v1/stacks", token: token).status == 401
                if !firstRefuses { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(firstRefuses)
            try await cli.psql("UPDATE api_keys SET revoked_at = NULL WHERE id = '\(key["id"] ?? "")'")

            let second = try ServeProcess(cli: cli)
            defer { second.cleanUp() }
            try await second.waitUntilHealthy()
            let reply = try await second.request("GET", "/api/v1/stacks", token: token)
            #expect(reply.status == 401)
            #expect((reply.body["error"] as? [String: Any])?["code"] as? String == "token_revoked")
            #expect(try await first.request("GET", "/api/v1/stacks", token: token).status == 401, "the list only grows")
        }
    }
}
