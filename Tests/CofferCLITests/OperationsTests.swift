import CofferTestSupport
import Foundation
import Testing

/// What an operator relies on: Prometheus metrics, HTTPS, and a clean SIGTERM.
@Suite struct OperationsTests {
    @Test func metricsParseWithPrometheusClientAndMoveWithRequests() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let parse = """
                import json, sys
                from prometheus_client.parser import text_string_to_metric_families
                out = {}
                for family in text_string_to_metric_families(sys.stdin.read()):
                    for sample in family.samples:
                        labels = ",".join("%s=%s" % kv for kv in sorted(sample.labels.items()))
                        out[sample.name + "{" + labels + "}"] = sample.value
                print(json.dumps(out))
                """
            func scrape() async throws -> [String: Double] {
                let text = try await server.request("GET", "/metrics").raw
                let parsed = try await ProcessRunner.run(try TestEnvironment.python(), ["-c", parse], stdin: Data(text.utf8))
                guard parsed.status == 0 else { throw TestFailure("prometheus_client could not parse /metrics: \(parsed.stderr)\n\(text)") }
                return (try JSONSerialization.jsonObject(with: Data(parsed.stdout.utf8)) as? [String: Double]) ?? [:]
            }
            let before = try await scrape()
            let token = try await server.token(for: admin)
            for _ in 0..<5 { #expect(try await server.request("GET", "/api/v1/stacks", token: token).status == 200) }
            #expect(try await server.request("POST", "/api/v1/stacks", token: token, json: ["id": "app", "name": "App"]).status == 201)
            #expect(try await server.request("PUT", "/api/v1/stacks/app/config/SECRET", token: token,
                                       json: ["type": "ENVIRONMENT_VARIABLE", "value": "metric-canary", "write_only": true]).status == 201)
            #expect(try await server.request("GET", "/api/v1/stacks", token: "not.a.token").status == 401)
            let after = try await scrape()

            func delta(_ name: String) -> Double { (after[name] ?? 0) - (before[name] ?? 0) }
            #expect(delta("coffer_http_requests_total{method=GET,route=/api/v1/stacks,status=200}") == 5)
            // Five answered, one refused (401): all six timed.
            #expect(delta("coffer_http_request_duration_seconds_count{method=GET,route=/api/v1/stacks}") == 6)
            #expect(delta("coffer_tokens_issued_total{}") == 1)
            #expect(delta("coffer_tokens_rejected_total{reason=invalid_token}") == 1)
            // Eight bearer tokens checked (seven valid, one refused), and the time they took.
            #expect(delta("coffer_token_verifications_total{}") == 8)
            #expect(delta("coffer_token_verification_seconds_total{}") > 0)
            #expect(delta("coffer_values_sealed_total{}") >= 1)
            #expect(after["coffer_data_key_active_version{purpose=database}"] == 1)
            #expect(after.keys.contains { $0.hasPrefix("coffer_db_connections_in_use") })
            // Labels are route templates, never ids, tokens or values.
            let text = try await server.request("GET", "/metrics").raw
            for (name, secret) in [("token", token), ("API key secret", admin["secret"]!), ("API key id", admin["id"]!),
                                   ("config value", "metric-canary"), ("raw path", "/api/v1/stacks/app")] {
                let exposed = text.contains(secret)  // a Bool: a failure prints no secret
                #expect(!exposed, "metrics expose the \(name)")
            }
        }
    }

    @Test func httpsServesWithATestCertificateAndRefusesOldTLS() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let folder = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: folder) }
            let made = try await ProcessRunner.shell("""
                cd '\(folder.path)' && \
                openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 -subj /CN=coffer-test-ca 2>/dev/null && \
                openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null && \
                printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext && \
                openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 1 -extfile san.ext 2>/dev/null
                """)
            #expect(made.status == 0, "\(made.stderr)")
            let server = try ServeProcess(cli: cli, overrides: [
                "COFFER_TLS_CERT_FILE": folder.appendingPathComponent("server.pem").path,
                "COFFER_TLS_KEY_FILE": folder.appendingPathComponent("server.key").path,
            ])
            defer { server.cleanUp() }
            let url = "https://127.0.0.1:\(server.port)/healthz"
            var answered: ProcessResult?
            for _ in 0..<150 {
                let result = try await server.curl(["-fsS", "--cacert", folder.appendingPathComponent("ca.pem").path, url])
                if result.status == 0 { answered = result; break }
                if !server.process.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(answered?.stdout.contains("ok") == true, "\(server.log)")
            // Not trusted without the CA; plain HTTP and TLS 1.1 are refused.
            #expect(try await server.curl(["-fsS", url]).status != 0)
            #expect(try await server.curl(["-fsS", "http://127.0.0.1:\(server.port)/healthz"]).status != 0)
            #expect(try await server.curl(["-fsS", "--cacert", folder.appendingPathComponent("ca.pem").path, "--tlsv1.1", "--tls-max", "1.1", url]).status != 0)
            #expect(try await server.curl(["-fsS", "--cacert", folder.appendingPathComponent("ca.pem").path, "--tlsv1.2", "--tls-max", "1.2", url]).status == 0)

            // A key file that is not a key is one clear line and exit 2.
            let bad = try await cli.run(["serve"], overrides: [
                "COFFER_TLS_CERT_FILE": folder.appendingPathComponent("server.pem").path,
                "COFFER_TLS_KEY_FILE": folder.appendingPathComponent("san.ext").path,
            ])
            #expect(bad.status == 2)
            #expect(bad.stderr.contains("COFFER_TLS_KEY_FILE") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        }
    }

    @Test func sigtermUnderLoadDrainsEveryRequestAcceptedBeforeItAndExitsZero() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "runner", "--role", "worker", "--format", "json"]))
            let writer = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "writer", "--role", "write", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let writerToken = try await server.token(for: writer)
            #expect(try await server.request("POST", "/api/v1/stacks", token: writerToken, json: ["id": "app", "name": "App"]).status == 201)
            let folder = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: folder) }
            let signalFile = folder.appendingPathComponent("signalled")
            let load = Process()
            load.executableURL = URL(fileURLWithPath: try TestEnvironment.python())
            load.arguments = ["-c", """
                import http.client, json, os, sys, threading, time
                port, worker, writer, folder = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
                records, lock = [], threading.Lock()
                signalled_path, ready_path = os.path.join(folder, "signalled"), os.path.join(folder, "ready")
                def finished():
                    # Runs until 3 s after the test sends SIGTERM (it writes the time first), at most 60 s.
                    if time.time() > deadline: return True
                    try: return time.time() > float(open(signalled_path).read()) + 3
                    except (OSError, ValueError): return False
                def run(n):
                    connection = None
                    i = 0
                    while not finished():
                        if connection is None:
                            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
                        start = time.time()
                        try:
                            if n % 2:
                                connection.request("PUT", "/api/v1/stacks/app/config/V%d_%d" % (n, i), body=json.dumps({"type": "ENVIRONMENT_VARIABLE", "value": "x"}),
                                                   headers={"Authorization": "Bearer " + writer, "Content-Type": "application/json"})
                            else:
                                connection.request("GET", "/api/v1/stacks/app/runtime-config", headers={"Authorization": "Bearer " + worker})
                            response = connection.getresponse(); response.read()
                            outcome = response.status
                            if response.getheader("Connection", "").lower() == "close":
                                connection.close(); connection = None
                        except Exception as error:
                            outcome = type(error).__name__
                            connection = None
                            time.sleep(0.01)
                        with lock:
                            records.append((start, time.time(), outcome))
                            # Load is flowing: the test may send SIGTERM soon.
                            if len(records) == 100: open(ready_path, "w").close()
                        i += 1
                deadline = time.time() + 60
                threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
                for thread in threads: thread.start()
                for thread in threads: thread.join()
                json.dump(records, open(os.path.join(folder, "records.json"), "w"))
                """, "\(server.port)", try await server.token(for: worker), writerToken, folder.path]
            load.standardOutput = FileHandle.nullDevice
            load.standardError = FileHandle.nullDevice
            try load.run()
            // SIGTERM once 100 requests have been answered and a second more has passed, so
            // the drain is tested under load however slowly the machine starts the client.
            let ready = folder.appendingPathComponent("ready")
            for _ in 0..<1200 where !FileManager.default.fileExists(atPath: ready.path) {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(FileManager.default.fileExists(atPath: ready.path), "the load never reached 100 requests")
            try await Task.sleep(for: .seconds(1))
            let signalled = Date().timeIntervalSince1970
            try "\(signalled)".write(to: signalFile, atomically: true, encoding: .utf8)
            kill(server.process.processIdentifier, SIGTERM)
            await server.process.exited()
            await load.exited()
            #expect(server.process.terminationStatus == 0, "exit status \(server.process.terminationStatus)")

            let records = (try JSONSerialization.jsonObject(with: Data(contentsOf: folder.appendingPathComponent("records.json"))) as? [[Any]]) ?? []
            // Requests sent well before the signal (the server must have read them; with every
            // suite running at once on 2 cores, a few milliseconds do not make that sure): a
            // request written on an idle keep-alive connection as the server closes it is the
            // HTTP/1.1 race that clients retry, not a request dropped while draining.
            let before = records.filter { ($0[0] as? Double ?? 0) < signalled - 0.5 }
            let failedBefore = before.filter { ![200, 201].contains($0[2] as? Int ?? 0) }
            #expect(before.count > 50, "only \(before.count) requests before SIGTERM")
            #expect(failedBefore.isEmpty, "\(failedBefore.count) of \(before.count) requests sent before SIGTERM failed: \(failedBefore.prefix(3))")
            #expect(server.log.contains("\"message\":\"request\""))
        }
    }
}

/// Process hygiene (issue 19, point 7): a running `coffer serve` shows no secret in its
/// environment and writes no core file.
@Suite struct ProcessHygieneTests {
    @Test func aServingProcessHidesItsSecretsAndDumpsNoCore() async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let pid = server.process.processIdentifier
            let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))
            let text = String(decoding: environ, as: UTF8.self)
            let readable = text.contains("COFFER_HTTP_PORT=")
            #expect(readable, "the environment could not be read at all")
            let key = TestKeys.environmentValue(cli.key)
            for (name, secret) in [("the root key", String(key.prefix(64))), ("the database URL", cli.database.url)] {
                // A Bool, so a failure prints no part of the environment.
                let shown = text.contains(secret)
                #expect(!shown, "/proc/\(pid)/environ shows \(name)")
            }
            let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
            let core = limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") }.map(String.init) ?? ""
            #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
            // The server still works from its copy of the configuration.
            #expect(try await server.request("GET", "/readyz").status == 200)
        }
    }
}
