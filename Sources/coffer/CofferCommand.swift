import ArgumentParser
import CofferCore
import Foundation
import NIOCore
import NIOPosix

/// `coffer`: the one executable. Subcommands parse arguments, build objects from the
/// environment and call into the libraries; no business rule lives here.
@main
struct CofferCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "coffer",
        abstract: "A self-hosted secrets vault: envelope-encrypted config for stacks and contexts.",
        discussion: """
            Configured by environment variables (ENCRYPTION_TYPE, ENCRYPTION_RSA_PRIVATE_KEY, DATABASE_URL, ...); see the README.

            Exit codes: 0 success, 1 unexpected failure (including pending migrations at `serve`), \
            2 invalid configuration or arguments, 3 the root key does not match the stored key-encryption key, \
            4 database unreachable, 5 KMS unreachable.
            """,
        version: version,
        subcommands: [MigrateCommand.self, ServeCommand.self, KeysCommand.self, RootKeyCommand.self, APIKeysCommand.self, ConfigCommand.self, KMSCommand.self, AuditCommand.self, RunCommand.self]
    )

    /// Runs Swift concurrency's jobs on NIO's event loops, so a request's task, its HTTP
    /// connection and its database connection share threads instead of handing every
    /// await over between two thread pools, then runs the command.
    static func main() {
        ProcessHygiene.apply()
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        Task {
            await run()
            Foundation.exit(0)
        }
        dispatchMain()
    }

    /// Runs the command and turns every error into one line on standard error and the
    /// contract's exit code (``ExitStatus``).
    static func run() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = ExitStatus.code(for: error)
            if code == ExitStatus.invalidConfiguration, ExitStatus.isArgumentError(error) {
                // An argument error: let ArgumentParser print its usage message.
                let message = fullMessage(for: error)
                if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            } else if code != 0 {
                FileHandle.standardError.write(Data("coffer: \(ExitStatus.message(for: error))\n".utf8))
            } else {
                let message = fullMessage(for: error)
                if !message.isEmpty { print(message) }
            }
            Foundation.exit(code)
        }
    }
}
