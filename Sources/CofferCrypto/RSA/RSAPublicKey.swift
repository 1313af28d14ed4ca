import Crypto
import CryptoExtras
import Foundation

/// An RSA public key: wraps the key-encryption key, verifies RS256 signatures, and
/// names itself by fingerprint (SHA-256 of its SubjectPublicKeyInfo DER) and by its
/// RFC 7638 JWK thumbprint.
public struct RSAPublicKey: Sendable, Hashable {
    private let key: _RSA.Signing.PublicKey
    /// SubjectPublicKeyInfo DER.
    public let spkiDER: [UInt8]
    /// Modulus, big-endian, without leading zero bytes.
    public let modulus: [UInt8]
    /// Public exponent, big-endian, without leading zero bytes.
    public let exponent: [UInt8]

    init(_ key: _RSA.Signing.PublicKey) {
        self.key = key
        self.spkiDER = [UInt8](key.derRepresentation)
        let primitives = try? key.getKeyPrimitives()
        self.modulus = Self.stripLeadingZeros([UInt8](primitives?.modulus ?? Data()))
        self.exponent = Self.stripLeadingZeros([UInt8](primitives?.publicExponent ?? Data()))
    }

    /// Loads a public key from SubjectPublicKeyInfo DER (as KMS `GetPublicKey` returns it).
    public init(spkiDER: some DataProtocol) throws {
        do {
            self.init(try _RSA.Signing.PublicKey(derRepresentation: spkiDER))
        } catch {
            throw RSAKeyError(.malformed, "the public key is not a DER RSA SubjectPublicKeyInfo of at least 2048 bits")
        }
    }

    /// Builds a public key from its modulus and exponent (big-endian), as a JWK carries them.
    public init(modulus: [UInt8], exponent: [UInt8]) throws {
        do {
            self.init(try _RSA.Signing.PublicKey(n: modulus, e: exponent))
        } catch {
            throw RSAKeyError(.malformed, "the modulus and exponent do not form an RSA key of at least 2048 bits")
        }
    }

    /// Loads a public key from a `BEGIN PUBLIC KEY` PEM.
    public init(pem: String) throws {
        do {
            self.init(try _RSA.Signing.PublicKey(pemRepresentation: pem))
        } catch {
            throw RSAKeyError(.malformed, "the public key PEM is not an RSA key of at least 2048 bits")
        }
    }

    public static func == (lhs: RSAPublicKey, rhs: RSAPublicKey) -> Bool { lhs.spkiDER == rhs.spkiDER }
    public func hash(into hasher: inout Hasher) { hasher.combine(spkiDER) }

    /// Size of the modulus in bits.
    public var keySizeInBits: Int { key.keySizeInBits }

    /// The public key as a `BEGIN PUBLIC KEY` PEM.
    public var pem: String { key.pemRepresentation }

    /// SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex: the identity recorded
    /// for an RSA root on the key-encryption key's row.
    public var fingerprint: String { Hex.encode(SHA256.hash(data: spkiDER)) }

    /// The RFC 7638 thumbprint (SHA-256, base64url), used as the JWT `kid`.
    public var jwkThumbprint: String {
        let canonical = #"{"e":"\#(Base64URL.encode(exponent))","kty":"RSA","n":"\#(Base64URL.encode(modulus))"}"#
        return Base64URL.encode(Array(SHA256.hash(data: Array(canonical.utf8))))
    }

    /// The key as a JWK for a JWK Set.
    public var jwk: JWK {
        JWK(kty: "RSA", use: "sig", alg: "RS256", kid: jwkThumbprint, n: Base64URL.encode(modulus), e: Base64URL.encode(exponent))
    }

    /// Wraps a value with RSA-OAEP (SHA-256, MGF1-SHA-256, no label).
    public func wrap(_ plaintext: some DataProtocol) throws -> [UInt8] {
        do {
            let encryptionKey = try _RSA.Encryption.PublicKey(derRepresentation: spkiDER)
            return [UInt8](try encryptionKey.encrypt(plaintext, padding: .PKCS1_OAEP_SHA256))
        } catch {
            throw RSAKeyError(.operationFailed, "RSA-OAEP encryption failed")
        }
    }

    /// Checks an RS256 (RSASSA-PKCS1-v1_5, SHA-256) signature.
    public func verifyRS256(signature: some DataProtocol, message: some DataProtocol) -> Bool {
        let signature = _RSA.Signing.RSASignature(rawRepresentation: Data(signature))
        return key.isValidSignature(signature, for: SHA256.hash(data: message), padding: .insecurePKCS1v1_5)
    }

    private static func stripLeadingZeros(_ bytes: [UInt8]) -> [UInt8] {
        let trimmed = Array(bytes.drop(while: { $0 == 0 }))
        return trimmed.isEmpty ? [0] : trimmed
    }
}

/// A JSON Web Key for an RSA signing key (RFC 7517).
public struct JWK: Codable, Sendable, Hashable {
    public let kty: String
    public let use: String
    public let alg: String
    public let kid: String
    public let n: String
    public let e: String
}
