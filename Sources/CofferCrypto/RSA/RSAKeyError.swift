/// Why an RSA private key could not be loaded. The reason says what was found and how
/// to fix it; it never includes key bytes.
public struct RSAKeyError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What was wrong with the input.
    public enum Code: String, Sendable {
        case empty
        case notBase64
        case notPEM
        case encryptedPEM
        case notRSA
        case tooSmall
        case malformed
        case operationFailed
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func == (lhs: RSAKeyError, rhs: RSAKeyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }
}
