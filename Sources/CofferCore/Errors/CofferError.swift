/// A domain error: a code from the catalogue (``Code``, in `CofferError+Catalogue.swift`)
/// and a message that says what was wrong and never contains a secret. Build one with the
/// constructor named after its code: `CofferError.unknownSpace("space `x` does not exist")`.
public struct CofferError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What kind of failure a code is; CofferHTTP gives each kind one status and the CLI
    /// one exit code.
    public enum Kind: Sendable, Hashable {
        case invalidInput
        case unauthorized
        case forbidden
        case notFound
        case notAllowed
        case conflict
        case tooLarge
        case unsupportedMediaType
        case unprocessable
        case tooManyRequests
        case unavailable
        case rootKeyMismatch
        case internalFailure
    }

    /// A machine-readable error code (snake_case on the wire) and its kind.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The snake_case name clients see.
        public let name: String
        public let kind: Kind

        init(_ name: String, _ kind: Kind) {
            self.name = name
            self.kind = kind
        }

        public var description: String { name }
    }

    public let code: Code
    public let message: String
    /// Seconds after which a refused request may succeed (`Retry-After`), when known.
    public let retryAfter: Int?

    public init(_ code: Code, _ message: String, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.retryAfter = retryAfter
    }

    public var kind: Kind { code.kind }

    public var description: String { message }
}
