@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Key lifecycle with real processes: `coffer keys` and `coffer root-key` runs against a
/// serving `coffer serve` under load, and a destruction job killed midway.
@Suite struct KeyLifecycleProcessTests {
    static func scalar<T: PostgresDecodable & Sendable>(_ cli: CLI, _ sql: String, as type: T.Type) async throws -> T {
        try await cli.database.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "t")).collect().first!.decode(T.self)
        }
    }

    /// A Python client that writes and reads config values on two threads until told to
    /// stop, and reports every acknowledged write and every failed request.
    final class Load: @unchecked Sendable {
        let process = Process()
        let folder: URL

        init(port: Int, writer: String, worker: String) throws {
            folder = try TestEnvironment.temporaryDirectory()
            let script = """
                import http.client, json, os, sys, threading, time
                port, writer, worker, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
                acked, failures, lock = {}, [], threading.Lock()
                stop = os.path.join(folder, "stop")
                counts = {"writes": 0, "reads": 0}
                def request(connection, method, path, token, body=None):
                    headers = {"Authorization": "Bearer " + token}
                    if body is not None:
                        headers["Content-Type"] = "application/json"
                    connection.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
                    response = connection.getresponse()
                    return response.status, response.read()
                def writes():
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    n = 0
                    while not os.path.exists(stop):
                        name, value = "LOAD_%d" % (n % 40), "v-%d" % n
                        status, body = request(connection, "PUT", "/api/v1/stacks/load/config/" + name, writer,
                                               {"type": "ENVIRONMENT_VARIABLE", "value": value, "write_only": n % 2 == 0})
                        with lock:
                            counts["writes"] += 1
                            if status in (200, 201): acked[name] = value
                            else: failures.append("PUT %d %s" % (status, body[:200]))
                        n += 1
                def reads():
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    while not os.path.exists(stop):
                        status, body = request(connection, "GET", "/api/v1/stacks/load/runtime-config", worker)
                        with lock:
                            counts["reads"] += 1
                            if status != 200: failures.append("GET %d %s" % (status, body[:200]))
                threads = [threading.Thread(target=writes), threading.Thread(target=reads)]
                for thread in threads: thread.start()
                for thread in threads: thread.join()
                json.dump({"acked": acked, "failures": failures, "counts": counts}, open(os.path.join(folder, "result.json"), "w"))
                """
            process.executableURL = URL(fileURLWithPath: try TestEnvironment.python())
            process.arguments = ["-c", script, "\(port)", writer, worker, folder.path]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
        }

        func finish() async throws -> (acked: [String: String], failures: [String], counts: [String: Int]) {
            FileManager.default.createFile(atPath: folder.appendingPathComponent("stop").path, contents: nil)
            await process.exited()
            defer { try? FileManager.default.removeItem(at: folder) }
            let data = try Data(contentsOf: folder.appendingPathComponent("result.json"))
            let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] ?? [:]
            return (object["acked"] as? [String: String] ?? [:], object["failures"] as? [String] ?? [], object["counts"] as? [String: Int] ?? [:])
        }
    }

    @Test func rotationDestructionAndRootMigrationUnderLoadLoseNothing() async throws {
        try await withCLI { cli in
            let kmsKeys = try await KMSModeTests.createKeys()
            let endpoint = try TestEnvironment.kmsEndpoint()
            let rsaEnvironment = cli.environment
            var kmsEnvironment = rsaEnvironment
            kmsEnvironment.merge(KMSModeTests.environment(kmsKeys, endpoint: endpoint)) { $1 }
            let aws = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_KMS": endpoint]
            // RSA → KMS: the stored keys are under RSA now.
            var toKMS = kmsEnvironment
            toKMS.merge(["PREVIOUS_ENCRYPTION_TYPE": "rsa", "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY": rsaEnvironment["ENCRYPTION_RSA_PRIVATE_KEY"]!]) { $1 }
            // KMS → RSA.
            var toRSA = rsaEnvironment
            toRSA.merge(aws) { $1 }
            toRSA.merge(["PREVIOUS_ENCRYPTION_TYPE": "kms", "PREVIOUS_ENCRYPTION_KMS_ENCRYPTION_KEY_ID": kmsKeys.encryption]) { $1 }
            func run(_ arguments: [String], _ environment: [String: String]) async throws -> ProcessResult {
                let result = try await ProcessRunner.run(try TestEnvironment.binary(), arguments, environment: environment)
                #expect(result.status == 0, "coffer \(arguments.joined(separator: " ")): \(result.stderr)")
                return result
            }

            _ = try await run(["migrate"], rsaEnvironment)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let writer = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "writer", "--role", "write", "--format", "json"]))
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "worker", "--role", "worker", "--format", "json"]))
            // The service has both roots during the migration window.
            let server = try ServeProcess(cli: cli, overrides: toRSA)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let adminToken = try await server.token(for: admin)
            #expect(try await server.request("POST", "/api/v1/stacks", token: adminToken, json: ["id": "load", "name": "Load"]).status == 201)
            let load = try Load(port: server.port, writer: try await server.token(for: writer), worker: try await server.token(for: worker))
            try await Task.sleep(for: .milliseconds(700))

            #expect(try await run(["keys", "rotate"], rsaEnvironment).stdout.contains("kek-v2"))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await run(["keys", "rotate", "--rewrap"], rsaEnvironment).stdout.contains("rewrapped"))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await run(["keys", "destroy", "database-v1"], rsaEnvironment).stdout.contains("job"))
            var completed = false
            for _ in 0..<100 {
                let jobs = try await server.request("GET", "/api/v1/keys/destruction-jobs", token: adminToken)
                if ((jobs.body["items"] as? [[String: Any]])?.first?["state"] as? String) == "completed" { completed = true; break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(completed, "the destruction job did not complete")
            #expect(try await run(["root-key", "migrate"], toKMS).stdout.contains("rewrapped: kek-v3"))
            #expect(try await Self.scalar(cli, "SELECT count(*) FROM key_encryption_keys WHERE wrapped_key IS NOT NULL AND root_type = 'kms'", as: Int.self) == 1)
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await run(["keys", "rotate"], kmsEnvironment).stdout.contains("kek-v4"))
            try await Task.sleep(for: .milliseconds(700))
            #expect(try await run(["root-key", "migrate"], toRSA).stdout.contains("rewrapped: kek-v3, kek-v4"))
            try await Task.sleep(for: .milliseconds(700))
            let result = try await load.finish()

            #expect(result.failures.isEmpty, "failed requests under load: \(result.failures.prefix(5))")
            #expect((result.counts["writes"] ?? 0) > 50 && (result.counts["reads"] ?? 0) > 50, "\(result.counts)")
            // Every acknowledged write reads back exactly.
            let runtime = try await server.request("GET", "/api/v1/stacks/load/runtime-config", token: try await server.token(for: worker))
            let values = Dictionary(uniqueKeysWithValues: ((runtime.body["items"] as? [[String: Any]]) ?? []).map { ($0["id"] as! String, $0["value"] as! String) })
            #expect(!result.acked.isEmpty)
            for (name, value) in result.acked { #expect(values[name] == value, "\(name)") }
            // Back under RSA, with nothing under database-v1.
            #expect(try await Self.scalar(cli, "SELECT count(*) FROM key_encryption_keys WHERE wrapped_key IS NOT NULL AND root_type <> 'rsa'", as: Int.self) == 0)
            #expect(try await Self.scalar(cli, "SELECT count(*) FROM config_element_versions WHERE dek_version = 1", as: Int.self) == 0)
            // The README's recovery walk-through still opens every value.
            let recovered = try await Recovery.runWalkthrough(databaseURL: cli.database.url, key: cli.key)
            for (name, value) in result.acked {
                #expect(recovered.contains { $0.configID == name && $0.plaintext == value }, "\(name) not recovered")
            }
            let list = try await run(["keys", "list"], rsaEnvironment).stdout
            #expect(list.contains("database-v1\tdestroyed"))
            server.stop()
            #expect(!server.log.contains("\"level\":\"error\""), "errors in the server log")
        }
    }

    @Test func aDestructionJobKilledMidwayResumesAndOnlyOneReplicaRunsIt() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            // 800 rows, one per batch with a pause: the first replica would need minutes.
            let slow = ["COFFER_DESTRUCTION_BATCH_SIZE": "1", "COFFER_DESTRUCTION_BATCH_PAUSE": "200ms"]
            let fast = ["COFFER_DESTRUCTION_BATCH_SIZE": "10"]
            let first = try ServeProcess(cli: cli, overrides: slow)
            defer { first.cleanUp() }
            try await first.waitUntilHealthy()
            let token = try await first.token(for: admin)
            #expect(try await first.request("POST", "/api/v1/stacks", token: token, json: ["id": "many", "name": "Many"]).status == 201)
            let fill = try await ProcessRunner.run(try TestEnvironment.python(), ["-c", """
                import http.client, json, sys
                connection = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=30)
                ok = 0
                for i in range(400):
                    connection.request("PUT", "/api/v1/stacks/many/config/V_%d" % i, body=json.dumps({"type": "ENVIRONMENT_VARIABLE", "value": "value-%d" % i}),
                                       headers={"Authorization": "Bearer " + sys.argv[2], "Content-Type": "application/json"})
                    response = connection.getresponse(); response.read()
                    ok += response.status == 201
                print(ok)
                """, "\(first.port)", token])
            #expect(fill.stdout == "400\n", "\(fill.stderr)")
            #expect(try await cli.run(["keys", "rotate"]).status == 0)
            #expect(try await cli.run(["keys", "destroy", "database-v1"]).status == 0)

            // Kill the replica while its job is midway.
            var progress = 0
            for _ in 0..<600 {
                progress = try await Self.scalar(cli, "SELECT done::int FROM key_destruction_jobs", as: Int.self)
                if progress >= 5 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            kill(first.process.processIdentifier, SIGKILL)
            await first.process.exited()
            let state = try await Self.scalar(cli, "SELECT state FROM key_destruction_jobs", as: String.self)
            let done = try await Self.scalar(cli, "SELECT done::int FROM key_destruction_jobs", as: Int.self)
            // 400 current values and their 400 history versions.
            #expect(try await Self.scalar(cli, "SELECT total::int FROM key_destruction_jobs", as: Int.self) == 800)
            #expect(state == "running" && done > 0 && done < 800, "killed at \(state) \(done)/800")

            // Two replicas start; the job resumes on exactly one of them and completes.
            let second = try ServeProcess(cli: cli, overrides: fast)
            defer { second.cleanUp() }
            let third = try ServeProcess(cli: cli, overrides: fast)
            defer { third.cleanUp() }
            try await second.waitUntilHealthy()
            try await third.waitUntilHealthy()
            var finished = ""
            for _ in 0..<300 {
                finished = try await Self.scalar(cli, "SELECT state FROM key_destruction_jobs", as: String.self)
                if finished != "running" { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(finished == "completed")
            #expect(try await Self.scalar(cli, "SELECT done::int FROM key_destruction_jobs", as: Int.self) == 800)
            #expect(try await Self.scalar(cli, "SELECT count(*)::int FROM config_elements WHERE dek_version = 1", as: Int.self) == 0)
            #expect(try await Self.scalar(cli, "SELECT count(*)::int FROM config_element_versions WHERE dek_version = 1", as: Int.self) == 0)
            #expect(try await Self.scalar(cli, "SELECT count(*)::int FROM data_encryption_keys WHERE purpose = 'database' AND version = 1 AND sealed_key IS NULL", as: Int.self) == 1)
            second.stop()
            third.stop()
            let runs = [second.log, third.log].map { $0.components(separatedBy: "destruction job running").count - 1 }
            #expect(runs.reduce(0, +) == 1, "the job ran \(runs) times across the two replicas")
            // Every value still reads.
            let recovered = try await Recovery.runWalkthrough(databaseURL: cli.database.url, key: cli.key)
            #expect(Set(recovered.map(\.plaintext)) == Set((0..<400).map { "value-\($0)" }))
        }
    }

    @Test func anRSARootChangeKeepsTokensOfTheOldKeyValidWhileItIsThePreviousRoot() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let old = try ServeProcess(cli: cli)
            let oldToken = try await { defer { old.cleanUp() }; try await old.waitUntilHealthy(); return try await old.token(for: admin) }()

            // Move to another RSA key, keeping the old one as the previous root.
            let next = CLI(database: cli.database, key: TestKeys.other)
            let previous = ["PREVIOUS_ENCRYPTION_TYPE": "rsa", "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY": TestKeys.environmentValue(TestKeys.primary)]
            let migrated = try await next.run(["root-key", "migrate"], overrides: previous)
            #expect(migrated.status == 0, "\(migrated.stderr)")
            #expect(migrated.stdout.contains("rewrapped: kek-v1"))
            #expect(try await next.run(["root-key", "migrate"]).status == 2, "PREVIOUS_* is required")
            // The old key alone no longer opens the hierarchy.
            #expect(try await cli.run(["serve"]).status == 3)

            let server = try ServeProcess(cli: next, overrides: previous)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let jwks = try await server.request("GET", "/.well-known/jwks.json").body["keys"] as? [[String: Any]] ?? []
            #expect(Set(jwks.compactMap { $0["kid"] as? String }) == [TestKeys.primary.publicKey.jwkThumbprint, TestKeys.other.publicKey.jwkThumbprint])
            #expect(try await server.request("GET", "/api/v1/stacks", token: oldToken).status == 200)
            let newToken = try await server.token(for: admin)
            #expect(try await server.request("GET", "/api/v1/stacks", token: newToken).status == 200)
            // Without the previous root, only the new key is published and old tokens stop working.
            server.stop()
            let plain = try ServeProcess(cli: next)
            defer { plain.cleanUp() }
            try await plain.waitUntilHealthy()
            #expect((try await plain.request("GET", "/.well-known/jwks.json").body["keys"] as? [[String: Any]])?.count == 1)
            #expect(try await plain.request("GET", "/api/v1/stacks", token: oldToken).status == 401)
            #expect(try await plain.request("GET", "/api/v1/stacks", token: newToken).status == 200)
        }
    }
}
