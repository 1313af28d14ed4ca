import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// `coffer run --stack ID -- COMMAND ARGS…`: a runner's one command. It reads the stack's
/// runtime config from a running Coffer, writes its mounted files into a fresh private
/// folder, runs the command with the variables in its environment, forwards signals to it,
/// exits with its status and removes the files. It prints no value, ever.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a command with a stack's runtime config: its variables in the environment, its files in a private folder.",
        discussion: """
            The server is COFFER_URL (default http://127.0.0.1:8080). Authentication, the first \
            that is set: COFFER_TOKEN (a token from POST /api/v1/auth/token), or \
            COFFER_API_KEY_ID with COFFER_API_KEY_SECRET (a key with the worker role on the \
            stack's space or a parent of it).

            Mounted files are written under a new folder (mode 0700, files 0600) in /dev/shm \
            when it exists, else in TMPDIR; COFFER_FILES_DIR tells the command where. Each file's \
            path is its config id, kept inside that folder. The folder is removed when the command \
            ends. The command gets coffer's own environment without Coffer's credentials, plus the \
            variables (which win over variables of the same name).

            SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to the command. \
            The exit status is the command's, or 128 + the signal that ended it. Before the \
            command starts: 1 when Coffer cannot be reached or refuses, 2 for bad arguments or \
            configuration, 127 when the command is not found.
            """
    )

    @Option(help: "The stack whose runtime config the command gets.") var stack: String
    @Option(help: "The Coffer server (default: COFFER_URL, else http://127.0.0.1:8080).") var url: String?
    @Option(help: "Seconds to wait for the server.") var timeout: Int = 30
    @Flag(help: "List the config ids, types and sources the command would get, and run nothing.") var dryRun = false
    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).") var command: [String] = []

    /// Variables coffer reads to authenticate, which the command does not inherit.
    static let credentialVariables = ["COFFER_TOKEN", "COFFER_API_KEY_ID", "COFFER_API_KEY_SECRET"]

    func validate() throws {
        guard !stack.isEmpty, stack.utf8.count <= 128, stack.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0 != "/" && $0.value != 0x7f }) else {
            throw ValidationError("--stack must be a stack id")
        }
        guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
    }

    func run() async throws {
        let arguments = command.first == "--" ? Array(command.dropFirst()) : command
        guard dryRun || !arguments.isEmpty else {
            throw CommandFailure(code: ExitStatus.invalidConfiguration, message: "give the command to run after --")
        }
        let client = try RuntimeConfigClient(url: url, timeout: timeout, environment: ProcessEnvironment.variables)
        let items = try await client.runtimeConfig(stack: stack)
        if dryRun {
            for item in items { print("\(item.id)\t\(item.type)\t\(item.source)") }
            return
        }
        let files = try PrivateFolder.make()
        let status: Int32
        do {
            var environment = ProcessEnvironment.variables
            for name in Self.credentialVariables + ProcessHygiene.secretVariables { environment.removeValue(forKey: name) }
            for item in items {
                switch item.type {
                case "ENVIRONMENT_VARIABLE": environment[item.id] = item.value
                case "FILE_MOUNT": try files.write(item)
                default: throw CommandFailure(code: ExitStatus.unexpected, message: "config element `\(item.id)` has a type this coffer does not know (\(item.type))")
                }
            }
            environment["COFFER_FILES_DIR"] = files.url.path
            status = try await ChildProcess.run(arguments, environment: environment)
        } catch {
            files.remove()
            throw error
        }
        files.remove()
        // The command's own status, as it is: not one of coffer's codes, and no message.
        fflush(nil)
        Foundation.exit(status)
    }
}

/// One element of a runtime config as the route answers it.
struct RuntimeConfigEntry: Sendable {
    let id: String
    let type: String
    let value: String
    let source: String
}

/// The HTTP side of `coffer run`: a token, then the stack's runtime config.
struct RuntimeConfigClient {
    let client: CofferClient
    let environment: [String: String]

    init(url: String?, timeout: Int, environment: [String: String]) throws {
        self.client = try CofferClient(url: url, timeout: timeout, environment: environment)
        self.environment = environment
    }

    /// A token: COFFER_TOKEN, or one issued for COFFER_API_KEY_ID and COFFER_API_KEY_SECRET.
    func token() async throws -> String {
        if let token = environment["COFFER_TOKEN"], !token.isEmpty { return token }
        guard let id = environment["COFFER_API_KEY_ID"], !id.isEmpty, let secret = environment["COFFER_API_KEY_SECRET"], !secret.isEmpty else {
            throw CommandFailure(code: ExitStatus.invalidConfiguration,
                                 message: "set COFFER_TOKEN, or COFFER_API_KEY_ID and COFFER_API_KEY_SECRET")
        }
        let answer = try await client.call("/api/v1/auth/token", token: nil, body: ["api_key_id": id, "api_key_secret": secret], what: "the token request")
        guard let token = answer["token"] as? String else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "Coffer answered the token request without a token")
        }
        return token
    }

    func runtimeConfig(stack: String) async throws -> [RuntimeConfigEntry] {
        let answer = try await client.call("/api/v1/stacks/\(CofferClient.segment(stack))/runtime-config", token: try await token(),
                                           what: "the runtime config of stack `\(stack)`")
        guard let items = answer["items"] as? [[String: Any]] else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "Coffer answered the runtime config without items")
        }
        return try items.map { item in
            guard let id = item["id"] as? String, let type = item["type"] as? String, let value = item["value"] as? String else {
                throw CommandFailure(code: ExitStatus.unexpected, message: "Coffer answered a runtime config element without id, type or value")
            }
            return RuntimeConfigEntry(id: id, type: type, value: value, source: item["source"] as? String ?? "")
        }
    }
}

/// The folder a command's mounted files live in: new, private, and removed afterwards.
struct PrivateFolder {
    let url: URL

    static func make() throws -> PrivateFolder {
        let shm = URL(fileURLWithPath: "/dev/shm")
        let parent = access("/dev/shm", W_OK | X_OK) == 0 ? shm : FileManager.default.temporaryDirectory
        var template = Array(parent.appendingPathComponent("coffer-run.XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "cannot create a private folder in \(parent.path) (errno \(errno))")
        }
        // mkdtemp makes it 0700.
        return PrivateFolder(url: URL(fileURLWithPath: String(cString: made), isDirectory: true))
    }

    /// Writes a mounted file at its relative path (its config id), refusing any path that
    /// would leave the folder; a file's value is base64.
    func write(_ item: RuntimeConfigEntry) throws {
        let components = item.id.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard !item.id.hasPrefix("/"), !components.isEmpty, components.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "file `\(item.id)` has a path that would leave the files folder; refused")
        }
        guard let bytes = Data(base64Encoded: item.value) else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "file `\(item.id)` is not base64 as Coffer sends files")
        }
        var directory = url
        for component in components.dropLast() {
            directory.appendPathComponent(component, isDirectory: true)
            if mkdir(directory.path, 0o700) != 0 && errno != EEXIST {
                throw CommandFailure(code: ExitStatus.unexpected, message: "cannot create the folder of file `\(item.id)` (errno \(errno))")
            }
        }
        let path = directory.appendingPathComponent(components.last!).path
        // O_EXCL and O_NOFOLLOW: a file is created anew, never through a link.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "cannot create file `\(item.id)` (errno \(errno))")
        }
        defer { close(descriptor) }
        let written = bytes.withUnsafeBytes { buffer -> Int in
            var offset = 0
            while offset < buffer.count {
                let count = Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if count < 0 { if errno == EINTR { continue } else { return -1 } }
                offset += count
            }
            return offset
        }
        guard written == bytes.count else {
            throw CommandFailure(code: ExitStatus.unexpected, message: "cannot write file `\(item.id)` (errno \(errno))")
        }
    }

    func remove() {
        try? FileManager.default.removeItem(at: url)
    }
}

/// The command, started with its environment and given the signals coffer receives.
enum ChildProcess {
    static let forwarded = [SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2]

    /// Runs `arguments` and returns its exit status (128 + signal when a signal ended it).
    static func run(_ arguments: [String], environment: [String: String]) async throws -> Int32 {
        guard let executable = resolve(arguments[0], path: environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin") else {
            throw CommandFailure(code: 127, message: "command not found: \(arguments[0])")
        }
        let process = Process()
        process.executableURL = executable
        process.arguments = Array(arguments.dropFirst())
        process.environment = environment
        // Signals are taken over before the command starts, so none ends coffer first; one
        // that arrives before the command's pid is known is passed on as soon as it is.
        let child = ChildPID()
        var sources: [any DispatchSourceSignal] = []
        for number in forwarded {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { child.signal(number) }
            source.resume()
            sources.append(source)
        }
        defer { for source in sources { source.cancel() } }
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { process in
                let code = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
                continuation.resume(returning: code)
            }
            do {
                try process.run()
                child.started(process.processIdentifier)
            } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: CommandFailure(code: 126, message: "cannot run \(arguments[0]): \(error.localizedDescription)"))
            }
        }
        return status
    }

    /// The command's pid, and the signals that came before it was known.
    final class ChildPID: Sendable {
        private let state = Mutex<(pid: Int32, pending: [Int32])>((0, []))

        func signal(_ number: Int32) {
            let pid = state.withLock { state -> Int32 in
                if state.pid == 0 { state.pending.append(number) }
                return state.pid
            }
            if pid > 0 { kill(pid, number) }
        }

        func started(_ pid: Int32) {
            let pending = state.withLock { state -> [Int32] in
                state.pid = pid
                defer { state.pending = [] }
                return state.pending
            }
            for number in pending { kill(pid, number) }
        }
    }

    /// The command's file: a path as given when it holds a `/`, else the first executable
    /// of that name on PATH.
    static func resolve(_ command: String, path: String) -> URL? {
        if command.contains("/") {
            return access(command, X_OK) == 0 ? URL(fileURLWithPath: command) : nil
        }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(command)"
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue, access(candidate, X_OK) == 0 {
                return URL(fileURLWithPath: candidate)
            }
        }
        return nil
    }
}
