import ArgumentParser
import CofferCore
import Foundation

/// `coffer config check`.
struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Inspect the configuration.",
        subcommands: [Check.self]
    )

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the environment and print what would be used (never a secret). Connects to nothing."
        )

        func run() async throws {
            let configuration = try ProcessEnvironment.configuration()
            let width = configuration.summary.map(\.0.count).max() ?? 0
            for (name, value) in configuration.summary {
                print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value)
            }
            for warning in configuration.warnings {
                FileHandle.standardError.write(Data("coffer: warning: \(warning)\n".utf8))
            }
            print("configuration is valid")
        }
    }
}
