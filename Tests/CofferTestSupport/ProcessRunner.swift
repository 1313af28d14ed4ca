import Foundation

/// Runs a program to completion and captures what it printed.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

public enum ProcessRunner {
    /// Runs `executable` with `arguments`; `environment` replaces the process environment
    /// except for PATH and HOME, which are kept. The wait happens on a thread of its own:
    /// every test shares one process and its two cooperative threads, and a test that
    /// blocked one of them while a child ran would stall the others' database and HTTP
    /// work past their deadlines (clean-clone CI, every suite at once on 2 cores).
    public static func run(
        _ executable: String, _ arguments: [String] = [], environment: [String: String] = [:],
        inheritEnvironment: Bool = false, stdin: Data? = nil, timeout: TimeInterval = 120
    ) async throws -> ProcessResult {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(with: Result {
                    try runBlocking(executable, arguments, environment: environment, inheritEnvironment: inheritEnvironment, stdin: stdin, timeout: timeout)
                })
            }
            thread.start()
        }
    }

    private static func runBlocking(
        _ executable: String, _ arguments: [String], environment: [String: String],
        inheritEnvironment: Bool, stdin: Data?, timeout: TimeInterval
    ) throws -> ProcessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = inheritEnvironment ? ProcessInfo.processInfo.environment : [:]
        for key in ["PATH", "HOME", "LANG"] { env[key] = env[key] ?? ProcessInfo.processInfo.environment[key] }
        env.merge(environment) { $1 }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let input = Pipe()
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var outData = Data(), errData = Data()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        group.wait()
        return ProcessResult(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData, as: UTF8.self)
        )
    }

    /// Runs a shell pipeline with `/bin/sh -c`.
    public static func shell(_ command: String, environment: [String: String] = [:], stdin: Data? = nil) async throws -> ProcessResult {
        try await run("/bin/sh", ["-c", command], environment: environment, inheritEnvironment: true, stdin: stdin)
    }
}

extension Process {
    /// Waits for the process to end without holding one of the cooperative threads that
    /// every suite of the test process shares.
    public func exited() async {
        while isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        waitUntilExit()  // reaps it; returns at once
    }
}
