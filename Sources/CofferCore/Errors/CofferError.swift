/// A domain error: a kind that decides the HTTP status and exit code, a snake_case code
/// for clients, and a message that says what was wrong and never contains a secret.
public struct CofferError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is; one HTTP status each.
    public enum Kind: Sendable {
        case invalidInput       // 400
        case unauthorized       // 401
        case forbidden          // 403
        case notFound           // 404
        case conflict           // 409
        case tooLarge           // 413
        case unprocessable      // 422
        case unavailable        // 503
        case rootKeyMismatch    // CLI exit 3
        case internalFailure    // 500
    }

    public let kind: Kind
    /// Machine-readable, snake_case.
    public let code: String
    public let message: String

    public init(_ kind: Kind, code: String, _ message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func invalidInput(_ message: String, code: String = "invalid_input") -> CofferError {
        CofferError(.invalidInput, code: code, message)
    }
    public static func unauthorized(_ message: String, code: String = "unauthorized") -> CofferError {
        CofferError(.unauthorized, code: code, message)
    }
    public static func forbidden(_ message: String) -> CofferError {
        CofferError(.forbidden, code: "forbidden", message)
    }
    public static func notFound(_ message: String) -> CofferError {
        CofferError(.notFound, code: "not_found", message)
    }
    public static func conflict(_ message: String) -> CofferError {
        CofferError(.conflict, code: "conflict", message)
    }
    public static func tooLarge(_ message: String) -> CofferError {
        CofferError(.tooLarge, code: "too_large", message)
    }
    public static func unprocessable(_ message: String, code: String = "unprocessable") -> CofferError {
        CofferError(.unprocessable, code: code, message)
    }
    public static func unavailable(_ message: String) -> CofferError {
        CofferError(.unavailable, code: "unavailable", message)
    }
}
