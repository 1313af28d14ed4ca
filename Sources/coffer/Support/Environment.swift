import CofferCore
import CofferKeys
import Foundation
import Logging

/// The process environment, read once at the edge and passed to the libraries.
enum ProcessEnvironment {
    static var variables: [String: String] { ProcessInfo.processInfo.environment }

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Parses the full configuration (root key included).
    static func configuration() throws -> CofferConfiguration {
        try CofferConfiguration(environment: variables, stdoutIsTerminal: stdoutIsTerminal)
    }

    /// The root key provider and token signer of a configuration.
    static func rootKey(for configuration: CofferConfiguration) throws -> RSARootKey {
        switch configuration.encryption {
        case .rsa(let key):
            return RSARootKey(privateKey: key)
        case .kms:
            throw ConfigurationError("ENCRYPTION_TYPE", "kms is not supported by this build yet; set ENCRYPTION_TYPE=rsa")
        }
    }

    /// Sets up logging once: JSON lines or text to `stream`, at `level`.
    static func bootstrapLogging(level: Logger.Level, format: CofferConfiguration.LogFormat, toStandardError: Bool) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .json: handler = JSONLogHandler(label: label, toStandardError: toStandardError)
            case .text: handler = toStandardError ? StreamLogHandler.standardError(label: label) : StreamLogHandler.standardOutput(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }

    /// Log settings from the environment alone, for commands that need no root key.
    static func logSettings() -> (Logger.Level, CofferConfiguration.LogFormat) {
        let level = variables["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        let format = variables["LOG_FORMAT"].flatMap { CofferConfiguration.LogFormat(rawValue: $0.lowercased()) }
            ?? (isatty(STDERR_FILENO) == 1 ? .text : .json)
        return (level, format)
    }
}
