import CofferCrypto

/// Which kind of root protects the key-encryption key; stored in `key_encryption_keys.root_type`.
public enum RootType: String, Sendable, Codable, CaseIterable {
    case rsa
    case kms
}

/// The root of the key hierarchy: wraps and unwraps the key-encryption key. Its material
/// never leaves it and is never stored by Coffer.
///
/// Two implementations exist or are planned: a local RSA key and AWS KMS; others (Vault
/// Transit, GCP, Azure) fit the same seam.
public protocol RootKeyProvider: Sendable {
    /// The kind of root.
    var rootType: RootType { get }
    /// The root's identity as recorded on the key-encryption key row: the KMS key ARN,
    /// or the SHA-256 fingerprint of the RSA public key.
    var rootKeyID: String { get }
    /// Wraps a key-encryption key.
    func wrap(_ key: [UInt8]) async throws -> [UInt8]
    /// Unwraps a key-encryption key.
    /// - Throws: ``RootKeyError`` with `wrongKey` when the blob was not wrapped by this root.
    func unwrap(_ wrapped: [UInt8]) async throws -> [UInt8]
}

/// Signs the RS256 tokens Coffer issues. Verification is always local, with ``publicKey``.
public protocol TokenSigner: Sendable {
    /// The public half, published in the JWK Set.
    var publicKey: RSAPublicKey { get }
    /// Signs the JWS signing input with RSASSA-PKCS1-v1_5 over SHA-256.
    func signRS256(_ signingInput: [UInt8]) async throws -> [UInt8]
}

/// A failure of the root key.
public struct RootKeyError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// The stored blob does not open with this root.
        case wrongKey
        /// The root could not be reached (KMS down, throttled past retries).
        case unavailable
        /// The root refused the operation (permissions, key state).
        case refused
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func == (lhs: RootKeyError, rhs: RootKeyError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }
}
