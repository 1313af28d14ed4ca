import CofferTestSupport
import Foundation
import Testing

/// Disclosure bound to the ciphertext (database-compromise issue, point 2): a config value's
/// sealing binds its type, `write_only` and version (sealed format 2), so rows edited with
/// `psql` under a live `coffer serve` disclose nothing and roll nothing back; values written
/// before format 2 still open, in Coffer and in the README's recovery walk-through, until
/// `coffer keys reseal` has sealed them again.
@Suite struct SealedFormatTests {
    @Test func valuesEditedInTheDatabaseAreServedByNoRoute() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "worker", "--role", "worker", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let token = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": admin["id"]!, "api_key_secret": admin["secret"]!]).body["token"] as? String)
            let workerToken = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": worker["id"]!, "api_key_secret": worker["secret"]!]).body["token"] as? String)
            #expect(try await server.request("POST", "/api/v1/stacks", token: token, json: ["id": "app", "name": "App"]).status == 201)

            let canary = "canary-\(UUID().uuidString)"
            func put(_ id: String, _ value: String, writeOnly: Bool) async throws {
                let reply = try await server.request("PUT", "/api/v1/stacks/app/config/\(id)", token: token,
                                                     json: ["type": "ENVIRONMENT_VARIABLE", "value": value, "write_only": writeOnly])
                #expect(reply.status == 200 || reply.status == 201, "\(reply.raw)")
            }
            try await put("SECRET", "\(canary)-secret-1", writeOnly: true)
            try await put("SECRET", "\(canary)-secret-2", writeOnly: true)
            try await put("PLAIN", "\(canary)-plain-1", writeOnly: false)
            try await put("PLAIN", "\(canary)-plain-2", writeOnly: false)
            try await put("OTHER", "\(canary)-other", writeOnly: false)

            /// Every route that shows values, as the admin and the worker see them.
            func everyRoute() async throws -> [(route: String, status: Int, body: String)] {
                var replies: [(String, Int, String)] = []
                for (path, bearer) in [
                    ("/api/v1/stacks/app/config", token), ("/api/v1/stacks/app/config/SECRET", token),
                    ("/api/v1/stacks/app/config/PLAIN", token), ("/api/v1/stacks/app/config/SECRET/versions", token),
                    ("/api/v1/stacks/app/config/PLAIN/versions", token), ("/api/v1/stacks/app/runtime-config", workerToken),
                ] {
                    let reply = try await server.request("GET", path, token: bearer)
                    replies.append((path, reply.status, reply.raw))
                }
                return replies
            }
            func runtimeValue(_ id: String) async throws -> String? {
                let items = try await server.request("GET", "/api/v1/stacks/app/runtime-config", token: workerToken).body["items"] as? [[String: Any]]
                return items?.first { $0["id"] as? String == id }?["value"] as? String
            }
            // Untouched, the routes work and write-only values reach only the runtime config.
            for reply in try await everyRoute() {
                #expect(reply.status == 200, "\(reply.route)")
                #expect(!reply.body.contains("secret-") || reply.route.hasSuffix("runtime-config"), "\(reply.route) showed a write-only value")
            }
            #expect(try await runtimeValue("PLAIN") == "\(canary)-plain-2")

            // 1. `write_only` flipped on the element and its history: no route shows the value.
            try await cli.psql("UPDATE config_elements SET write_only = false WHERE config_id = 'SECRET'")
            try await cli.psql("UPDATE config_element_versions SET write_only = false WHERE config_id = 'SECRET'")
            for reply in try await everyRoute() {
                let shown = reply.body.contains("\(canary)-secret")
                #expect(!shown, "\(reply.route) answered \(reply.status) with a write-only value")
            }
            #expect(try await server.request("GET", "/api/v1/stacks/app/config/SECRET", token: token).status == 500)
            try await cli.psql("UPDATE config_elements SET write_only = true WHERE config_id = 'SECRET'")
            try await cli.psql("UPDATE config_element_versions SET write_only = true WHERE config_id = 'SECRET'")
            #expect(try await runtimeValue("SECRET") == "\(canary)-secret-2")

            // 2. An older version's sealed value copied over the current one: rolled back nowhere.
            try await cli.psql("""
                UPDATE config_elements SET sealed_value = (SELECT sealed_value FROM config_element_versions WHERE config_id = 'PLAIN' AND version = 1)
                WHERE config_id = 'PLAIN'
                """)
            let afterRollback = try await everyRoute()
            #expect(!afterRollback.contains { $0.route.hasSuffix("/config/PLAIN") && $0.body.contains("\(canary)-plain-1") })
            #expect(!afterRollback.contains { $0.route.hasSuffix("runtime-config") && $0.body.contains("\(canary)-plain-1") })
            #expect(!afterRollback.contains { $0.route.hasSuffix("/config") && $0.body.contains("\(canary)-plain-1") })
            #expect(try await server.request("GET", "/api/v1/stacks/app/config/PLAIN", token: token).status == 500)

            // 3. Another element's value copied over this one's: neither plaintext is served as PLAIN.
            try await cli.psql("""
                UPDATE config_elements SET sealed_value = (SELECT sealed_value FROM config_elements WHERE config_id = 'OTHER')
                WHERE config_id = 'PLAIN'
                """)
            let plain = try await server.request("GET", "/api/v1/stacks/app/config/PLAIN", token: token)
            #expect(plain.status == 500 && !plain.raw.contains(canary), "\(plain.status)")
            #expect(try await runtimeValue("PLAIN") == nil)

            // Put back as Coffer wrote it, the value is served again: the refusals above came
            // from the edits, not from a broken element.
            try await cli.psql("""
                UPDATE config_elements SET sealed_value = (SELECT sealed_value FROM config_element_versions WHERE config_id = 'PLAIN' AND version = 2)
                WHERE config_id = 'PLAIN'
                """)
            #expect(try await runtimeValue("PLAIN") == "\(canary)-plain-2")

            let metrics = try await server.request("GET", "/metrics").raw
            let failures = metrics.split(separator: "\n").first { $0.hasPrefix("coffer_integrity_failures_total{table=\"config_elements\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") }
            #expect((failures ?? 0) >= 3, "\(failures.map(String.init) ?? "no metric")")
            #expect(server.log.contains("integrity failure: a stored config value"))
            let logged = server.log.contains(canary)  // a Bool: a failure prints no secret
            #expect(!logged, "a value reached the server log")
        }
    }

    /// A database written partly before and partly after sealed format 2: the walk-through
    /// opens every value, Coffer serves every one, `coffer keys reseal` seals the old ones
    /// again, and once it has, a format 1 value put back is refused.
    @Test func bothFormatsOpenUntilTheResealRetiresFormat1() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let token = try #require(try await server.request("POST", "/api/v1/auth/token", json: ["api_key_id": admin["id"]!, "api_key_secret": admin["secret"]!]).body["token"] as? String)
            #expect(try await server.request("POST", "/api/v1/stacks", token: token, json: ["id": "app", "name": "App"]).status == 201)
            let canary = "canary-\(UUID().uuidString)"
            let values = ["OLD_A": "\(canary)-old-a", "OLD_B": "\(canary)-old-b", "NEW_A": "\(canary)-new-a", "NEW_B": "\(canary)-new-b"]
            for (id, value) in values.sorted(by: { $0.key < $1.key }) {
                for round in ["first", value] {  // two versions each
                    let reply = try await server.request("PUT", "/api/v1/stacks/app/config/\(id)", token: token,
                                                         json: ["type": "ENVIRONMENT_VARIABLE", "value": round, "write_only": false])
                    #expect(reply.status == 200 || reply.status == 201, "\(reply.raw)")
                }
            }
            // What a Coffer before format 2 wrote: OLD_* sealed in format 1, history included.
            try await Self.sealInFormat1(configIDs: ["OLD_A", "OLD_B"], cli: cli)
            let formatCounts = "SELECT (SELECT count(*) FROM config_elements WHERE get_byte(sealed_value, 0) = 1) || '/' || (SELECT count(*) FROM config_element_versions WHERE get_byte(sealed_value, 0) = 1)"
            #expect(try await cli.psql(formatCounts) == "2/4")
            let oldCurrent = try await cli.psql("SELECT encode(sealed_value, 'hex') FROM config_elements WHERE config_id = 'OLD_A'")

            func served() async throws -> [String: String] {
                let items = try await server.request("GET", "/api/v1/stacks/app/config", token: token).body["items"] as? [[String: Any]] ?? []
                return Dictionary(uniqueKeysWithValues: items.compactMap { item in
                    (item["id"] as? String).flatMap { id in (item["value"] as? String).map { (id, $0) } }
                })
            }
            #expect(try await served() == values)
            var recovered = try await Recovery.runWalkthrough(databaseURL: cli.database.url, key: cli.key)
            #expect(Dictionary(uniqueKeysWithValues: recovered.map { ($0.configID, $0.plaintext) }) == values)

            let reseal = try await cli.run(["keys", "reseal", "--wait"])
            #expect(reseal.status == 0, "\(reseal.stderr)")
            #expect(reseal.stdout.contains("resealing 6 value(s)") && reseal.stdout.contains("completed, 6/6"), "\(reseal.stdout)")
            #expect(try await cli.psql(formatCounts) == "0/0")
            #expect(try await cli.run(["keys", "jobs"]).stdout.contains("reseal\tcompleted"))
            #expect(try await served() == values)
            recovered = try await Recovery.runWalkthrough(databaseURL: cli.database.url, key: cli.key)
            #expect(Dictionary(uniqueKeysWithValues: recovered.map { ($0.configID, $0.plaintext) }) == values)

            // Format 1 is retired: the old value put back (as from a backup) is not served,
            // once the replica has reloaded its keys after the job.
            try await cli.psql("UPDATE config_elements SET sealed_value = decode('\(oldCurrent)', 'hex') WHERE config_id = 'OLD_A'")
            var status = 200
            for _ in 0..<40 where status == 200 {
                status = try await server.request("GET", "/api/v1/stacks/app/config/OLD_A", token: token).status
                if status == 200 { try await Task.sleep(for: .milliseconds(250)) }
            }
            #expect(status == 500)
        }
    }

    /// Seals the current values and history of `configIDs` again in format 1, the way a
    /// Coffer before format 2 wrote them, with the README walk-through's own steps (openssl
    /// unwraps the key-encryption key) and Python.
    static func sealInFormat1(configIDs: [String], cli: CLI) async throws {
        let readme = try String(contentsOf: TestEnvironment.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let folder = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        try cli.key.pkcs8PEM.write(to: folder.appendingPathComponent("key.pem"), atomically: true, encoding: .utf8)
        try Recovery.block("shell", in: readme).write(to: folder.appendingPathComponent("recover.sh"), atomically: true, encoding: .utf8)
        let ids = configIDs.map { "'\($0)'" }.joined(separator: ",")
        try """
            import os
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            deks = {}
            for line in open("deks.txt"):
                purpose, version, kek_version, sealed = line.rstrip("\\n").split("|")
                kek, blob = open(f"kek-{kek_version}.bin", "rb").read(), bytes.fromhex(sealed)
                deks[(purpose, int(version))] = AESGCM(kek).decrypt(blob[5:17], blob[17:], f"coffer/dek/{purpose}/{version}".encode())
            for line in open("history.txt"):
                owner, config_id, version, kind, write_only, sealed = line.rstrip("\\n").split("|")
                blob = bytes.fromhex(sealed)
                assert blob[0] == 2
                dek = AESGCM(deks[("database", int.from_bytes(blob[1:5], "big"))])
                plain = dek.decrypt(blob[5:17], blob[17:], f"coffer/config/v2/{owner}/{kind}/{write_only}/{version}/{config_id}".encode())
                nonce = os.urandom(12)
                old = bytes([1]) + blob[1:5] + nonce + dek.encrypt(nonce, plain, f"coffer/config/{owner}/{config_id}".encode())
                where = f"owner_id = '{owner}' AND config_id = '{config_id}' AND version = {version}"
                print(f"UPDATE config_element_versions SET sealed_value = '\\\\x{old.hex()}' WHERE {where};")
                print(f"UPDATE config_elements SET sealed_value = '\\\\x{old.hex()}' WHERE {where};")
            """.write(to: folder.appendingPathComponent("downgrade.py"), atomically: true, encoding: .utf8)
        let pgBin = try TestEnvironment.pgBin()
        let python = try TestEnvironment.python()
        let shell = try await ProcessRunner.shell("""
            cd '\(folder.path)' && PATH='\(pgBin)':"$PATH" bash -euo pipefail recover.sh \
            && psql "$DATABASE_URL" -Atc "SELECT owner_id, config_id, version, type, write_only::int, encode(sealed_value, 'hex') FROM config_element_versions WHERE config_id IN (\(ids))" > history.txt \
            && '\(python)' downgrade.py > downgrade.sql && psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -q -f downgrade.sql
            """, environment: ["DATABASE_URL": cli.database.url])
        guard shell.status == 0 else { throw TestFailure("sealing in format 1 failed: \(shell.stderr)") }
    }
}
