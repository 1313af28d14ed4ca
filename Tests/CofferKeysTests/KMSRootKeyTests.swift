import CofferCrypto
import CofferKeys
import CofferTestSupport
import Foundation
import Testing

@Suite struct KMSRootKeyTests {
    func keys() async throws -> (KMSClient, encryption: String, signing: String) {
        let kms = try KMSClientTests.client()
        let encryption = try await kms.createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "kek")
        let signing = try await kms.createKey(usage: "SIGN_VERIFY", spec: "RSA_2048", description: "jwt")
        return (kms, encryption.arn, signing.arn)
    }

    @Test func wrapsUnwrapsAndSigns() async throws {
        let (kms, encryption, signing) = try await keys()
        let root = try await KMSRootKey.connect(client: kms, encryptionKeyID: encryption, signingKeyID: signing)
        #expect(root.rootType == .kms)
        #expect(root.rootKeyID == encryption)
        let kek = [UInt8](repeating: 7, count: 32)
        let wrapped = try await root.wrap(kek)
        #expect(try await root.unwrap(wrapped) == kek)
        let message = Array("a.b".utf8)
        #expect(root.publicKey.verifyRS256(signature: try await root.signRS256(message), message: message))

        // Another encryption key does not unwrap it. (AWS answers IncorrectKeyException, which
        // becomes RootKeyError.wrongKey; moto answers AccessDeniedException. KeyHierarchy
        // compares the recorded ARN before asking KMS, so either way the root is refused.)
        let other = try await kms.createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "other")
        let wrong = try await KMSRootKey.connect(client: kms, encryptionKeyID: other.arn, signingKeyID: signing)
        await #expect(throws: (any Error).self) { try await wrong.unwrap(wrapped) }
    }

    @Test func keysOfTheWrongKindAreRefusedWithTheReason() async throws {
        let (kms, encryption, signing) = try await keys()
        let hmac = try await kms.createKey(usage: "GENERATE_VERIFY_MAC", spec: "HMAC_256", description: "mac")
        let ecc = try await kms.createKey(usage: "SIGN_VERIFY", spec: "ECC_NIST_P256", description: "ecc")
        let disabled = try await kms.createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "off")
        // moto's DisableKey takes the bare key id, not the ARN.
        let result = try await TestEnvironment.boto3("kms.disable_key(KeyId=sys.argv[1])", arguments: [disabled.keyID])
        #expect(result.status == 0, "\(result.stderr)")

        let cases: [(String, String, String, String)] = [
            ("signing key as encryption key", signing, signing, "usage SIGN_VERIFY"),
            ("encryption key as signing key", encryption, encryption, "usage ENCRYPT_DECRYPT"),
            ("HMAC key", hmac.arn, signing, "GENERATE_VERIFY_MAC"),
            ("ECC signing key", encryption, ecc.arn, "ECC_NIST_P256"),
            ("disabled key", disabled.arn, signing, "Disabled"),
            ("missing key", "alias/does-not-exist", signing, "NotFoundException"),
        ]
        for (name, encryptionID, signingID, expected) in cases {
            do {
                _ = try await KMSRootKey.connect(client: kms, encryptionKeyID: encryptionID, signingKeyID: signingID)
                Issue.record("\(name) accepted")
            } catch let error as KMSError {
                #expect(error.code == .refused, "\(name)")
                #expect(error.reason.contains(expected), "\(name): \(error.reason)")
                #expect(!error.reason.contains("\n"), "\(name)")
            }
        }
    }
}
