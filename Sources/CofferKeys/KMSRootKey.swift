import CofferCrypto
import Foundation
import Logging

/// The AWS KMS root (`ENCRYPTION_TYPE=kms`): a symmetric KMS key wraps the
/// key-encryption key under the encryption context `{"coffer:purpose":
/// "key-encryption-key"}`, and an RSA KMS key signs tokens (`Sign`, RAW message).
/// Key checks and the signing public key are fetched once, in ``connect``.
public struct KMSRootKey: RootKeyProvider, TokenSigner {
    /// The encryption context bound to the wrapped key-encryption key (CONTRACT §4).
    public static let encryptionContext = ["coffer:purpose": "key-encryption-key"]
    public static let signingKeySpecs: Set<String> = ["RSA_2048", "RSA_3072", "RSA_4096"]

    private let client: KMSClient
    /// The encryption key's ARN, recorded on the key-encryption key row.
    public let encryptionKeyARN: String
    public let signingKeyARN: String
    public let publicKey: RSAPublicKey

    /// Checks both keys with `DescribeKey` and fetches the signing public key.
    /// - Throws: ``KMSError`` `refused` naming the key, the problem and the fix, or
    ///   `unavailable` when KMS cannot be reached.
    public static func connect(client: KMSClient, encryptionKeyID: String, signingKeyID: String) async throws -> KMSRootKey {
        let encryption = try await client.describeKey(encryptionKeyID)
        try check(encryption, id: encryptionKeyID, variable: "ENCRYPTION_KMS_ENCRYPTION_KEY_ID", usage: "ENCRYPT_DECRYPT", specs: ["SYMMETRIC_DEFAULT"])
        let signing = try await client.describeKey(signingKeyID)
        try check(signing, id: signingKeyID, variable: "ENCRYPTION_KMS_SIGNING_KEY_ID", usage: "SIGN_VERIFY", specs: signingKeySpecs)
        let der = try await client.getPublicKey(keyID: signing.arn)
        let publicKey: RSAPublicKey
        do {
            publicKey = try RSAPublicKey(spkiDER: der)
        } catch {
            throw KMSError(.refused, "the public key of KMS key \(signing.arn) is not an RSA key of at least 2048 bits")
        }
        return KMSRootKey(client: client, encryptionKeyARN: encryption.arn, signingKeyARN: signing.arn, publicKey: publicKey)
    }

    private static func check(_ key: KMSClient.KeyMetadata, id: String, variable: String, usage: String, specs: Set<String>) throws {
        if key.keyUsage != usage {
            throw KMSError(.refused, "\(variable): KMS key \(key.arn) has usage \(key.keyUsage ?? "unknown"), not \(usage); create a key with KeyUsage \(usage)")
        }
        if let spec = key.keySpec, !specs.contains(spec) {
            throw KMSError(.refused, "\(variable): KMS key \(key.arn) has spec \(spec), not \(specs.sorted().joined(separator: " or ")); create a key of that spec")
        }
        if key.enabled == false || (key.keyState.map { $0 != "Enabled" } ?? false) {
            throw KMSError(.refused, "\(variable): KMS key \(key.arn) is \(key.keyState ?? "disabled"); enable it (kms:EnableKey) or choose another key")
        }
    }

    /// Only the wrapping half, for a previous root that signs nothing (root key migration).
    public static func connectWrapping(client: KMSClient, encryptionKeyID: String, variable: String) async throws -> KMSWrappingKey {
        let encryption = try await client.describeKey(encryptionKeyID)
        try check(encryption, id: encryptionKeyID, variable: variable, usage: "ENCRYPT_DECRYPT", specs: ["SYMMETRIC_DEFAULT"])
        return KMSWrappingKey(client: client, encryptionKeyARN: encryption.arn)
    }

    public var rootType: RootType { .kms }
    public var rootKeyID: String { encryptionKeyARN }

    public func wrap(_ key: [UInt8]) async throws -> [UInt8] {
        try await KMSWrappingKey(client: client, encryptionKeyARN: encryptionKeyARN).wrap(key)
    }

    public func unwrap(_ wrapped: [UInt8]) async throws -> [UInt8] {
        try await KMSWrappingKey(client: client, encryptionKeyARN: encryptionKeyARN).unwrap(wrapped)
    }

    public func signRS256(_ signingInput: [UInt8]) async throws -> [UInt8] {
        try await client.signRS256(keyID: signingKeyARN, message: signingInput)
    }
}

/// A KMS symmetric key that wraps and unwraps key-encryption keys under the contract's
/// encryption context.
public struct KMSWrappingKey: RootKeyProvider {
    let client: KMSClient
    public let encryptionKeyARN: String

    public var rootType: RootType { .kms }
    public var rootKeyID: String { encryptionKeyARN }

    public func wrap(_ key: [UInt8]) async throws -> [UInt8] {
        try await client.encrypt(keyID: encryptionKeyARN, plaintext: key, context: KMSRootKey.encryptionContext)
    }

    public func unwrap(_ wrapped: [UInt8]) async throws -> [UInt8] {
        do {
            return try await client.decrypt(keyID: encryptionKeyARN, ciphertext: wrapped, context: KMSRootKey.encryptionContext)
        } catch let error as KMSError where error.code == .invalidCiphertext {
            throw RootKeyError(.wrongKey, "KMS key \(encryptionKeyARN) does not unwrap the stored key-encryption key")
        }
    }
}
