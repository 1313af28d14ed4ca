import CofferCrypto
import CofferTestSupport
import Foundation
import Testing

/// Runs the real `coffer` binary against a test database.
struct CLI {
    let database: TestDatabase
    let key: RSAPrivateKey

    var environment: [String: String] {
        [
            "ENCRYPTION_TYPE": "rsa",
            "ENCRYPTION_RSA_PRIVATE_KEY": TestKeys.environmentValue(key),
            "DATABASE_URL": database.url,
            "LOG_LEVEL": "warning",
        ]
    }

    func run(_ arguments: [String], overrides: [String: String] = [:], removing: [String] = []) async throws -> ProcessResult {
        var env = environment
        env.merge(overrides) { $1 }
        for name in removing { env.removeValue(forKey: name) }
        return try await ProcessRunner.run(try TestEnvironment.binary(), arguments, environment: env)
    }

    /// Runs SQL with `psql`, as someone with only database access would; returns its output
    /// (unaligned, tuples only).
    @discardableResult
    func psql(_ sql: String) async throws -> String {
        let result = try await ProcessRunner.run(try TestEnvironment.pgBin() + "/psql", ["-v", "ON_ERROR_STOP=1", "-qAt", "--dbname", database.url, "-c", sql])
        guard result.status == 0 else { throw TestFailure("psql failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `pg_dump` of the database as plain SQL, without the `\restrict` lines whose key
    /// recent pg_dump versions draw at random on every run.
    func dump() async throws -> String {
        let result = try await ProcessRunner.run(try TestEnvironment.pgBin() + "/pg_dump", ["--no-owner", "--dbname", database.url])
        guard result.status == 0 else { throw TestFailure("pg_dump failed: \(result.stderr)") }
        return result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict ") && !$0.hasPrefix("\\unrestrict ") }
            .joined(separator: "\n")
    }
}

/// A `coffer serve` process on a free port, stopped by ``stop()``.
final class ServeProcess: @unchecked Sendable {
    // Touched only from the test's own task.
    let process = Process()
    let port: Int
    let output: URL

    init(cli: CLI, overrides: [String: String] = [:]) throws {
        port = try TestEnvironment.freePort()
        output = try TestEnvironment.temporaryDirectory().appendingPathComponent("serve.log")
        FileManager.default.createFile(atPath: output.path, contents: nil)
        var env = cli.environment
        env.merge(["COFFER_HTTP_HOST": "127.0.0.1", "COFFER_HTTP_PORT": "\(port)", "LOG_LEVEL": "info", "LOG_FORMAT": "json"]) { $1 }
        env.merge(overrides) { $1 }
        env["PATH"] = ProcessInfo.processInfo.environment["PATH"]
        process.executableURL = URL(fileURLWithPath: try TestEnvironment.binary())
        process.arguments = ["serve"]
        process.environment = env
        let handle = try FileHandle(forWritingTo: output)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
    }

    var baseURL: String { "http://127.0.0.1:\(port)" }

    /// Waits until `/healthz` answers.
    func waitUntilHealthy() async throws {
        for _ in 0..<150 {
            if !process.isRunning { throw TestFailure("coffer serve exited: \(log)") }
            if let result = try? await curl(["-fsS", "\(baseURL)/healthz"]), result.status == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw TestFailure("coffer serve did not become healthy")
    }

    var log: String { (try? String(contentsOf: output, encoding: .utf8)) ?? "" }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    /// Stops the process and removes its log folder.
    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(at: output.deletingLastPathComponent())
    }

    /// Runs curl; with `json`, posts or puts it.
    func curl(_ arguments: [String]) async throws -> ProcessResult {
        try await ProcessRunner.run("/usr/bin/env", ["curl", "-sS", "--max-time", "20"] + arguments, inheritEnvironment: true)
    }

    func request(_ method: String, _ path: String, token: String? = nil, json: Any? = nil) async throws -> (status: Int, body: [String: Any], raw: String) {
        var arguments = ["-X", method, "-w", "\n%{http_code}", "\(baseURL)\(path)"]
        if let token { arguments += ["-H", "Authorization: Bearer \(token)"] }
        if let json {
            let data = try JSONSerialization.data(withJSONObject: json)
            arguments += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: data, as: UTF8.self)]
        }
        let result = try await curl(arguments)
        guard result.status == 0 else { throw TestFailure("curl failed: \(result.stderr)") }
        let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let status = Int(lines.last ?? "") ?? 0
        let raw = lines.dropLast().joined(separator: "\n")
        let body = (try? JSONSerialization.jsonObject(with: Data(raw.utf8))) as? [String: Any] ?? [:]
        return (status, body, raw)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a CLI on a fresh database.
func withCLI<T>(key: RSAPrivateKey = TestKeys.primary, _ body: (CLI) async throws -> T) async throws -> T {
    try await withTestDatabase { database in try await body(CLI(database: database, key: key)) }
}

/// The JSON line `coffer api-keys create --format json` prints, as a dictionary.
func apiKeyJSON(_ result: ProcessResult) -> [String: String] {
    (try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: String] ?? [:]
}

extension ServeProcess {
    /// A token for an API key (`apiKeyJSON` of its creation).
    func token(for key: [String: String]) async throws -> String {
        let reply = try await request("POST", "/api/v1/auth/token", json: ["api_key_id": key["id"] ?? "", "api_key_secret": key["secret"] ?? ""])
        guard let token = reply.body["token"] as? String else { throw TestFailure("no token: HTTP \(reply.status)") }
        return token
    }
}
