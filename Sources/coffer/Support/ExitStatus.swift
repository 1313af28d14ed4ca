import ArgumentParser
import CofferCore
import CofferCrypto
import CofferKeys
import CofferStore

/// A failure a command reports with a chosen exit code and message.
struct CommandFailure: Error {
    let code: Int32
    let message: String
}

/// The contract's exit codes (CONTRACT §2) and the one-line message for each error.
enum ExitStatus {
    static let success: Int32 = 0
    static let unexpected: Int32 = 1
    static let invalidConfiguration: Int32 = 2
    static let rootKeyMismatch: Int32 = 3
    static let databaseUnreachable: Int32 = 4
    static let kmsUnreachable: Int32 = 5

    static func code(for error: any Error) -> Int32 {
        switch error {
        case let failure as CommandFailure: return failure.code
        case is ConfigurationError: return invalidConfiguration
        case let error as CofferError:
            switch error.kind {
            case .rootKeyMismatch: return rootKeyMismatch
            case .invalidInput, .unprocessable: return invalidConfiguration
            case .unauthorized, .forbidden, .notFound, .notAllowed, .conflict, .tooLarge, .unsupportedMediaType, .tooManyRequests, .unavailable, .internalFailure:
                return unexpected
            }
        case let error as StoreError where error.code == .unavailable: return databaseUnreachable
        case let error as KMSError:
            switch error.code {
            case .refused, .credentials: return invalidConfiguration
            case .unavailable: return kmsUnreachable
            case .invalidCiphertext: return rootKeyMismatch
            }
        default:
            let parserCode = CofferCommand.exitCode(for: error)
            if parserCode == .success { return success }
            if parserCode == .validationFailure { return invalidConfiguration }
            return parserCode.rawValue == 0 ? success : unexpected
        }
    }

    /// Errors of ArgumentParser (bad flags, `--help`), which print their own usage text.
    static func isArgumentError(_ error: any Error) -> Bool {
        switch error {
        case is CommandFailure, is ConfigurationError, is CofferError, is StoreError, is MigrationError,
             is RootKeyError, is KMSError, is SealError:
            return false
        default:
            return true
        }
    }

    static func message(for error: any Error) -> String {
        switch error {
        case let failure as CommandFailure: return failure.message
        case let error as ConfigurationError: return "invalid configuration: \(error.description)"
        case let error as CofferError: return error.message
        case let error as StoreError: return "database: \(error.reason)"
        case let error as MigrationError: return "migration: \(error.reason)"
        case let error as RootKeyError: return "root key: \(error.reason)"
        case let error as KMSError: return error.reason
        case let error as SealError: return error.description
        default: return "unexpected failure: \(type(of: error))"
        }
    }
}
