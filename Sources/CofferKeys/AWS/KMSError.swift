/// A failed KMS call, reduced to what an operator acts on: which action on which key,
/// what KMS said, and the IAM permission involved. Never carries plaintext or keys.
public struct KMSError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// KMS refused: permissions, key state, wrong key, bad input. Not retried.
        case refused
        /// The blob was not encrypted under this key or context.
        case invalidCiphertext
        /// KMS could not be reached or kept failing after retries.
        case unavailable
        /// No credentials could be found or obtained.
        case credentials
    }

    public let code: Code
    /// The KMS exception name, e.g. `AccessDeniedException`.
    public let exception: String?
    public let reason: String

    public init(_ code: Code, exception: String? = nil, _ reason: String) {
        self.code = code
        self.exception = exception
        self.reason = reason
    }

    public static func == (lhs: KMSError, rhs: KMSError) -> Bool { lhs.code == rhs.code && lhs.exception == rhs.exception }
    public func hash(into hasher: inout Hasher) { hasher.combine(code); hasher.combine(exception) }
    public var description: String { reason }

    /// Exceptions worth retrying: throttling and KMS's own faults.
    static let retryableExceptions: Set<String> = [
        "ThrottlingException", "KMSInternalException", "DependencyTimeoutException", "LimitExceededException",
        "InternalFailure", "ServiceUnavailable", "RequestTimeout",
    ]

    static let invalidCiphertextExceptions: Set<String> = ["InvalidCiphertextException", "IncorrectKeyException"]
}
