import Crypto
import CryptoExtras
import Foundation

/// An RSA private key of at least 2048 bits, used by the RSA root: it unwraps the
/// key-encryption key (RSA-OAEP, SHA-256, MGF1-SHA-256, no label) and signs RS256 tokens.
public struct RSAPrivateKey: Sendable {
    /// The smallest modulus accepted.
    public static let minimumBits = 2048

    private let signingKey: _RSA.Signing.PrivateKey
    /// The matching public key.
    public let publicKey: RSAPublicKey

    /// Size of the modulus in bits.
    public var keySizeInBits: Int { signingKey.keySizeInBits }

    /// Loads a key from the base64 of an unencrypted PKCS#8 or PKCS#1 PEM, the form of
    /// `ENCRYPTION_RSA_PRIVATE_KEY`. Line breaks and surrounding white space in the
    /// base64 are ignored.
    public init(base64PEM: String) throws {
        let compact = base64PEM.filter { !$0.isWhitespace }
        guard !compact.isEmpty else { throw RSAKeyError(.empty, "the value is empty") }
        guard let data = Data(base64Encoded: compact), !data.isEmpty else {
            if compact.hasPrefix("-----BEGIN") {
                throw RSAKeyError(.notBase64, "the value is a PEM, not its base64; encode it with `base64 -w0 key.pem`")
            }
            throw RSAKeyError(.notBase64, "the value is not valid base64; encode the PEM file with `base64 -w0 key.pem`")
        }
        guard let pem = String(data: data, encoding: .utf8) else {
            throw RSAKeyError(.notPEM, "the base64 does not decode to a PEM text; expected `-----BEGIN PRIVATE KEY-----`")
        }
        try self.init(pem: pem)
    }

    /// Loads a key from an unencrypted PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`) PEM.
    public init(pem: String) throws {
        let label = try PEMInspector.privateKeyLabel(of: pem)
        do {
            self.signingKey = try _RSA.Signing.PrivateKey(pemRepresentation: pem)
        } catch {
            if let small = try? _RSA.Signing.PrivateKey(unsafePEMRepresentation: pem) {
                throw RSAKeyError(.tooSmall, "the RSA key has \(small.keySizeInBits) bits; at least \(Self.minimumBits) are required (4096 recommended)")
            }
            if let bits = PEMInspector.rsaModulusBits(pem: pem), bits < Self.minimumBits {
                throw RSAKeyError(.tooSmall, "the RSA key has \(bits) bits; at least \(Self.minimumBits) are required (4096 recommended)")
            }
            throw RSAKeyError(.malformed, "the \(label) PEM could not be read as an RSA private key")
        }
        self.publicKey = RSAPublicKey(signingKey.publicKey)
    }

    /// Generates a new key, for development setups and tests.
    public static func generate(bits: Int = 4096) throws -> RSAPrivateKey {
        let size: _RSA.Signing.KeySize
        switch bits {
        case 2048: size = .bits2048
        case 3072: size = .bits3072
        case 4096: size = .bits4096
        default: throw RSAKeyError(.tooSmall, "supported sizes are 2048, 3072 and 4096 bits")
        }
        return try RSAPrivateKey(pem: _RSA.Signing.PrivateKey(keySize: size).pkcs8PEMRepresentation)
    }

    /// The key as a PKCS#8 PEM (to write a generated development key to a file).
    public var pkcs8PEM: String { signingKey.pkcs8PEMRepresentation }

    /// Decrypts a value wrapped with RSA-OAEP (SHA-256, MGF1-SHA-256, no label).
    public func unwrap(_ wrapped: some DataProtocol) throws -> [UInt8] {
        do {
            // `_RSA.Encryption.PrivateKey` is not Sendable, so it is rebuilt here from DER;
            // unwrapping happens once per start, never on the request path.
            let key = try _RSA.Encryption.PrivateKey(derRepresentation: signingKey.derRepresentation)
            return [UInt8](try key.decrypt(wrapped, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw RSAKeyError(.operationFailed, "RSA-OAEP decryption failed: the value was not wrapped with this key")
        }
    }

    /// Signs a message with RSASSA-PKCS1-v1_5 over SHA-256 (JWS `RS256`).
    public func signRS256(_ message: some DataProtocol) throws -> [UInt8] {
        let signature = try signingKey.signature(for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
        return [UInt8](signature.rawRepresentation)
    }
}
