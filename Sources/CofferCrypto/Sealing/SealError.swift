/// Why a sealed value could not be made or opened. Compares by code only, so callers
/// switch on the code while logs keep the detail. Never carries key or plaintext bytes.
public struct SealError: Error, Hashable, CustomStringConvertible, Sendable {
    /// What went wrong.
    public enum Code: String, Sendable {
        /// Fewer bytes than a header and a tag.
        case truncated
        /// The first byte is not a format Coffer knows.
        case unknownFormat
        /// The header names a key version other than the key offered, or one not held.
        case unknownKeyVersion
        /// The tag did not verify: wrong key, wrong associated data, or altered bytes.
        case authenticationFailed
        /// A key of the wrong length was offered.
        case invalidKey
    }

    /// The kind of failure.
    public let code: Code
    /// A human-readable reason, free of secrets.
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func == (lhs: SealError, rhs: SealError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { "seal error (\(code.rawValue)): \(reason)" }

    static func truncated(_ count: Int) -> SealError {
        SealError(.truncated, "sealed value has \(count) bytes, fewer than the \(SealedValue.minimumLength) of an empty one")
    }
}
