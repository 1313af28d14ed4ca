import CofferTestSupport
import Foundation
import Testing

/// `coffer run` end to end (workload identity issue, point 4), against a live `coffer
/// serve`: the command sees the stack's variables and files, no value reaches coffer's own
/// output, the files are gone afterwards, and the exit status and SIGTERM pass through.
@Suite struct RunCommandTests {
    struct Setup {
        let server: ServeProcess
        let worker: [String: String]
        let canary: String
        var url: String { "http://127.0.0.1:\(server.port)" }
        var credentials: [String: String] { ["COFFER_API_KEY_ID": worker["id"] ?? "", "COFFER_API_KEY_SECRET": worker["secret"] ?? ""] }
    }

    /// A stack `app` with a write-only variable from itself, a variable from an attached
    /// context and a file in a sub-folder, served by a live `coffer serve`.
    func withStack(_ body: (CLI, Setup) async throws -> Void) async throws {
        try await withCLI { cli in
            #expect(try await cli.run(["migrate"]).status == 0)
            let admin = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "admin", "--role", "admin", "--format", "json"]))
            let worker = apiKeyJSON(try await cli.run(["api-keys", "create", "--name", "runner", "--role", "worker", "--format", "json"]))
            let server = try ServeProcess(cli: cli)
            defer { server.cleanUp() }
            try await server.waitUntilHealthy()
            let token = try await server.token(for: admin)
            let canary = "canary-\(UUID().uuidString)"
            func ok(_ method: String, _ path: String, _ json: [String: Any]) async throws {
                let status = try await server.request(method, path, token: token, json: json).status
                #expect((200...201).contains(status), "\(method) \(path): \(status)")
            }
            try await ok("POST", "/api/v1/stacks", ["id": "app", "name": "App"])
            try await ok("POST", "/api/v1/contexts", ["id": "shared", "name": "Shared"])
            try await ok("PUT", "/api/v1/stacks/app/config/APP_SECRET", ["type": "ENVIRONMENT_VARIABLE", "value": "\(canary)-var", "write_only": true])
            try await ok("PUT", "/api/v1/contexts/shared/config/SHARED_URL", ["type": "ENVIRONMENT_VARIABLE", "value": "\(canary)-shared"])
            try await ok("PUT", "/api/v1/stacks/app/config/certs%2Fca.pem", ["type": "FILE_MOUNT", "value": Data("\(canary)-file\n".utf8).base64EncodedString()])
            try await ok("PUT", "/api/v1/stacks/app/contexts/shared", ["priority": 0])
            try await body(cli, Setup(server: server, worker: worker, canary: canary))
        }
    }

    @Test func theCommandSeesVariablesAndFilesAndNothingLeaks() async throws {
        try await withStack { cli, setup in
            let seen = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: seen) }
            let script = """
                printf '%s' "$APP_SECRET" > '\(seen.path)/var'
                printf '%s' "$SHARED_URL" > '\(seen.path)/shared'
                cp "$COFFER_FILES_DIR/certs/ca.pem" '\(seen.path)/file'
                printf '%s' "$COFFER_FILES_DIR" > '\(seen.path)/dir'
                stat -c %a "$COFFER_FILES_DIR" > '\(seen.path)/mode'
                stat -c %a "$COFFER_FILES_DIR/certs/ca.pem" > '\(seen.path)/file-mode'
                env > '\(seen.path)/env'
                echo "the command ran"
                exit 7
                """
            let result = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--", "sh", "-c", script], overrides: setup.credentials)
            #expect(result.status == 7, "\(result.stderr)")
            #expect(result.stdout.contains("the command ran"))
            func read(_ name: String) -> String { (try? String(contentsOf: seen.appendingPathComponent(name), encoding: .utf8)) ?? "" }
            let sawVariable = read("var") == "\(setup.canary)-var"
            let sawContextVariable = read("shared") == "\(setup.canary)-shared"
            let sawFile = read("file") == "\(setup.canary)-file\n"
            #expect(sawVariable && sawContextVariable && sawFile)
            #expect(read("mode").trimmingCharacters(in: .whitespacesAndNewlines) == "700")
            #expect(read("file-mode").trimmingCharacters(in: .whitespacesAndNewlines) == "600")
            let folder = read("dir")
            #expect(!folder.isEmpty && !FileManager.default.fileExists(atPath: folder), "the files folder is removed afterwards")
            let environment = read("env")
            let credentialsInherited = environment.contains("COFFER_API_KEY_SECRET=") || environment.contains(setup.worker["secret"] ?? "-")
                || environment.contains("ENCRYPTION_RSA_PRIVATE_KEY=") || environment.contains("DATABASE_URL=")
            #expect(!credentialsInherited, "the command does not inherit Coffer's credentials")
            let valueInOutput = (result.stdout + result.stderr).contains(setup.canary)
            #expect(!valueInOutput, "coffer run printed a value")

            let dryRun = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--dry-run"], overrides: setup.credentials)
            #expect(dryRun.status == 0)
            #expect(dryRun.stdout.contains("APP_SECRET\tENVIRONMENT_VARIABLE\tstack"))
            #expect(dryRun.stdout.contains("SHARED_URL\tENVIRONMENT_VARIABLE\tcontext:shared"))
            #expect(dryRun.stdout.contains("certs/ca.pem\tFILE_MOUNT\tstack"))
            let dryRunLeaks = (dryRun.stdout + dryRun.stderr).contains(setup.canary)
            #expect(!dryRunLeaks)

            // A token works as well as a key; refusals and bad invocations exit before any command runs.
            let token = try await setup.server.token(for: setup.worker)
            let withToken = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--", "sh", "-c", "test -n \"$APP_SECRET\""], overrides: ["COFFER_TOKEN": token])
            #expect(withToken.status == 0, "\(withToken.stderr)")
            let missing = try await cli.run(["run", "--stack", "nope", "--url", setup.url, "--", "true"], overrides: setup.credentials)
            #expect(missing.status == 1 && missing.stderr.contains("not_found"), "\(missing.stderr)")
            let wrongSecret = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--", "true"],
                                                overrides: ["COFFER_API_KEY_ID": setup.worker["id"] ?? "", "COFFER_API_KEY_SECRET": "cfs_wrong"])
            #expect(wrongSecret.status == 1 && wrongSecret.stderr.contains("invalid_credentials"), "\(wrongSecret.stderr)")
            let noCredentials = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--", "true"])
            #expect(noCredentials.status == 2)
            let noCommand = try await cli.run(["run", "--stack", "app", "--url", setup.url], overrides: setup.credentials)
            #expect(noCommand.status == 2)
            let notFound = try await cli.run(["run", "--stack", "app", "--url", setup.url, "--", "no-such-command-here"], overrides: setup.credentials)
            #expect(notFound.status == 127)
        }
    }

    @Test func sigtermReachesTheCommandAndItsStatusComesBack() async throws {
        try await withStack { cli, setup in
            let seen = try TestEnvironment.temporaryDirectory()
            defer { try? FileManager.default.removeItem(at: seen) }
            let script = """
                trap 'touch "\(seen.path)/got-term"; exit 42' TERM
                printf '%s' "$COFFER_FILES_DIR" > '\(seen.path)/dir'
                touch '\(seen.path)/ready'
                while :; do sleep 0.1; done
                """
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try TestEnvironment.binary())
            process.arguments = ["run", "--stack", "app", "--url", setup.url, "--", "sh", "-c", script]
            var environment = cli.environment
            environment["PATH"] = ProcessInfo.processInfo.environment["PATH"]
            environment.merge(setup.credentials) { $1 }
            process.environment = environment
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
            var ready = false
            for _ in 0..<300 where !ready {
                ready = FileManager.default.fileExists(atPath: seen.appendingPathComponent("ready").path)
                if !ready { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(ready, "the command did not start")
            let folder = (try? String(contentsOf: seen.appendingPathComponent("dir"), encoding: .utf8)) ?? ""
            #expect(FileManager.default.fileExists(atPath: folder))
            kill(process.processIdentifier, SIGTERM)
            for _ in 0..<300 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!process.isRunning)
            #expect(process.terminationReason == .exit && process.terminationStatus == 42)
            #expect(FileManager.default.fileExists(atPath: seen.appendingPathComponent("got-term").path))
            #expect(!folder.isEmpty && !FileManager.default.fileExists(atPath: folder), "the files folder is removed afterwards")
        }
    }
}
