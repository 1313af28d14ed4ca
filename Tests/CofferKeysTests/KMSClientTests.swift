import CofferCrypto
import CofferKeys
import CofferTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

/// The KMS client and root key against a real local KMS endpoint (moto), through the
/// same HTTP client and signer as production.
@Suite struct KMSClientTests {
    static let logger = Logger(label: "test")

    static func client(endpoint: String? = nil, attempts: Int = 4) throws -> KMSClient {
        var configuration = KMSClient.Configuration(region: "us-east-1", endpoint: try endpoint ?? TestEnvironment.kmsEndpoint())
        configuration.maximumAttempts = attempts
        configuration.baseBackoff = .milliseconds(10)
        let credentials = AWSCredentialProvider(
            source: .environment(AWSCredentials(accessKeyID: "testing", secretAccessKey: "testing")), logger: logger
        )
        return KMSClient(configuration: configuration, credentials: credentials, logger: logger)
    }

    @Test func encryptAndDecryptHonourTheEncryptionContext() async throws {
        let kms = try Self.client()
        let key = try await kms.createKey(usage: "ENCRYPT_DECRYPT", spec: "SYMMETRIC_DEFAULT", description: "test")
        #expect(key.arn.hasPrefix("arn:aws:kms:us-east-1:"))
        let plaintext = Array("a key-encryption key, 32 bytes!!".utf8)
        let context = ["coffer:purpose": "key-encryption-key"]
        let blob = try await kms.encrypt(keyID: key.arn, plaintext: plaintext, context: context)
        #expect(try await kms.decrypt(keyID: key.arn, ciphertext: blob, context: context) == plaintext)
        do {
            _ = try await kms.decrypt(keyID: key.arn, ciphertext: blob, context: ["coffer:purpose": "other"])
            Issue.record("decrypted under another context")
        } catch let error as KMSError {
            #expect(error.code == .invalidCiphertext)
        }
        // boto3, as an operator's `aws kms decrypt` would, opens the blob with the documented context.
        let python = try await TestEnvironment.boto3("""
            blob = base64.b64decode(sys.argv[1])
            out = kms.decrypt(CiphertextBlob=blob, EncryptionContext={"coffer:purpose": "key-encryption-key"})
            print(out["Plaintext"].decode())
            """, arguments: [Data(blob).base64EncodedString()])
        #expect(python.stdout == "a key-encryption key, 32 bytes!!\n", "\(python.stderr)")
    }

    @Test func rawRS256SignaturesVerifyWithTheFetchedPublicKey() async throws {
        let kms = try Self.client()
        let key = try await kms.createKey(usage: "SIGN_VERIFY", spec: "RSA_4096", description: "signing")
        let publicKey = try RSAPublicKey(spkiDER: try await kms.getPublicKey(keyID: key.arn))
        #expect(publicKey.keySizeInBits == 4096)
        let message = Array("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0".utf8)
        let signature = try await kms.signRS256(keyID: key.arn, message: message)
        #expect(publicKey.verifyRS256(signature: signature, message: message))
        #expect(!publicKey.verifyRS256(signature: signature, message: message + [0x20]))
        await #expect(throws: KMSError.self) { try await kms.signRS256(keyID: key.arn, message: [UInt8](repeating: 0x61, count: 4097)) }
    }

    @Test func aMissingKeyIsARefusalNamingTheKeyAndTheAction() async throws {
        let kms = try Self.client()
        let missing = "arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000"
        do {
            _ = try await kms.describeKey(missing)
            Issue.record("a missing key was described")
        } catch let error as KMSError {
            #expect(error.code == .refused)
            #expect(error.exception == "NotFoundException")
            #expect(error.reason.contains("DescribeKey"))
            #expect(error.reason.contains(missing))
        }
    }

    @Test func throttlingIsRetriedAndRefusalsAreNot() async throws {
        let attempts = AttemptCounter()
        let router = Router()
        router.post("/") { request, _ -> Response in
            let target = header(request, "X-Amz-Target") ?? ""
            let count = await attempts.next(target)
            #expect(request.headers[.authorization]?.hasPrefix("AWS4-HMAC-SHA256 Credential=testing/") == true)
            if target.hasSuffix("DescribeKey"), count < 3 {
                return Self.json(.badRequest, #"{"__type":"ThrottlingException","message":"Rate exceeded"}"#)
            }
            if target.hasSuffix("DescribeKey") {
                return Self.json(.ok, #"{"KeyMetadata":{"Arn":"arn:aws:kms:us-east-1:1:key/k","KeyId":"k","KeyUsage":"ENCRYPT_DECRYPT","KeySpec":"SYMMETRIC_DEFAULT","KeyState":"Enabled","Enabled":true}}"#)
            }
            if target.hasSuffix("Encrypt") {
                return Self.json(.internalServerError, #"{"__type":"KMSInternalException"}"#)
            }
            return Self.json(.badRequest, #"{"__type":"com.amazonaws.kms#AccessDeniedException","message":"User is not authorized"}"#)
        }
        try await Application(router: router).test(.live) { client in
            let kms = try Self.client(endpoint: "http://127.0.0.1:\(client.port!)")
            #expect(try await kms.describeKey("k").arn == "arn:aws:kms:us-east-1:1:key/k")
            #expect(await attempts.count("TrentService.DescribeKey") == 3)

            do {
                _ = try await kms.decrypt(keyID: "k", ciphertext: [1], context: [:])
                Issue.record("denied call succeeded")
            } catch let error as KMSError {
                #expect(error.code == .refused)
                #expect(error.exception == "AccessDeniedException")
                #expect(error.reason.contains("kms:Decrypt"))
            }
            #expect(await attempts.count("TrentService.Decrypt") == 1)

            await #expect(throws: KMSError(.unavailable, exception: "KMSInternalException", "")) {
                try await kms.encrypt(keyID: "k", plaintext: [1], context: [:])
            }
            #expect(await attempts.count("TrentService.Encrypt") == 4)
            #expect(kms.callCounts["DescribeKey ok"] == 1)
            #expect(kms.callCounts["DescribeKey error"] == 2)
        }
    }

    @Test func anUnreachableEndpointIsUnavailableAfterBoundedRetries() async throws {
        let kms = try Self.client(endpoint: "http://127.0.0.1:1", attempts: 3)
        do {
            _ = try await kms.describeKey("k")
            Issue.record("reached nothing")
        } catch let error as KMSError {
            #expect(error.code == .unavailable)
            #expect(error.reason.contains("3 attempts"))
        }
        #expect(kms.callCounts["DescribeKey error"] == 3)
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/x-amz-json-1.1"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

actor AttemptCounter {
    private var counts: [String: Int] = [:]
    func next(_ key: String) -> Int {
        counts[key, default: 0] += 1
        return counts[key]!
    }
    func count(_ key: String) -> Int { counts[key] ?? 0 }
}

/// A request header by case-insensitive name.
func header(_ request: Request, _ name: String) -> String? {
    request.headers.first { $0.name.rawName.lowercased() == name.lowercased() }?.value
}
