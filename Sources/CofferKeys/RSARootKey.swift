import CofferCrypto
import NIOPosix

/// The RSA root (`ENCRYPTION_TYPE=rsa`): one private key wraps the key-encryption key
/// with RSA-OAEP-SHA256 and signs tokens with RS256.
public struct RSARootKey: RootKeyProvider, TokenSigner {
    private let privateKey: RSAPrivateKey

    public init(privateKey: RSAPrivateKey) {
        self.privateKey = privateKey
    }

    public var rootType: RootType { .rsa }
    public var rootKeyID: String { privateKey.publicKey.fingerprint }
    public var publicKey: RSAPublicKey { privateKey.publicKey }

    public func wrap(_ key: [UInt8]) async throws -> [UInt8] {
        try privateKey.publicKey.wrap(key)
    }

    public func unwrap(_ wrapped: [UInt8]) async throws -> [UInt8] {
        do {
            return try privateKey.unwrap(wrapped)
        } catch {
            throw RootKeyError(.wrongKey, "the RSA key \(rootKeyID) does not unwrap the stored key-encryption key")
        }
    }

    /// Signs on NIO's blocking thread pool: an RSA-4096 signature takes milliseconds, and
    /// Swift concurrency's jobs run on the event loops that serve every connection.
    public func signRS256(_ signingInput: [UInt8]) async throws -> [UInt8] {
        let privateKey = self.privateKey
        return try await NIOThreadPool.singleton.runIfActive { try privateKey.signRS256(signingInput) }
    }
}
