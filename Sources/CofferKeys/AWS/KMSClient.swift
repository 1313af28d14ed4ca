import AsyncHTTPClient
import CofferCrypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// A small client for the AWS KMS JSON protocol (`X-Amz-Target: TrentService.<Action>`,
/// `application/x-amz-json-1.1`), signed with SigV4. Retries throttling, 5xx and
/// connection failures with exponential backoff and full jitter; never retries a refusal.
public final class KMSClient: Sendable {
    /// Where and how to call KMS.
    public struct Configuration: Sendable {
        public var region: String
        public var endpoint: String
        public var timeout: Duration = .seconds(5)
        public var maximumAttempts = 4
        public var baseBackoff: Duration = .milliseconds(100)

        public init(region: String, endpoint: String? = nil) {
            self.region = region
            self.endpoint = endpoint ?? Self.defaultEndpoint(region: region)
        }

        /// `https://kms.<region>.amazonaws.com` (`.amazonaws.com.cn` in China regions).
        public static func defaultEndpoint(region: String) -> String {
            region.hasPrefix("cn-") ? "https://kms.\(region).amazonaws.com.cn" : "https://kms.\(region).amazonaws.com"
        }
    }

    private let configuration: Configuration
    private let credentials: AWSCredentialProvider
    private let signer: SigV4Signer
    private let httpClient: HTTPClient
    private let logger: Logger
    private let counts = Mutex<[String: Int]>([:])

    public init(configuration: Configuration, credentials: AWSCredentialProvider, httpClient: HTTPClient = .shared, logger: Logger) {
        self.configuration = configuration
        self.credentials = credentials
        self.signer = SigV4Signer(service: "kms", region: configuration.region)
        self.httpClient = httpClient
        self.logger = logger
    }

    /// Calls so far by `action outcome` (`Decrypt ok`, `Sign error`), for metrics.
    public var callCounts: [String: Int] { counts.withLock { $0 } }

    // MARK: Actions

    /// Key metadata as `DescribeKey` returns it.
    public struct KeyMetadata: Decodable, Sendable {
        public let arn: String
        public let keyID: String
        public let keyUsage: String?
        public let keySpec: String?
        public let keyState: String?
        public let enabled: Bool?

        enum CodingKeys: String, CodingKey {
            case arn = "Arn", keyID = "KeyId", keyUsage = "KeyUsage", keySpec = "KeySpec", keyState = "KeyState", enabled = "Enabled"
        }
    }

    public func describeKey(_ keyID: String) async throws -> KeyMetadata {
        struct Response: Decodable { let KeyMetadata: KeyMetadata }
        return try await call("DescribeKey", keyID: keyID, ["KeyId": keyID], as: Response.self).KeyMetadata
    }

    /// Creates a key (for tests and first-time setup scripts).
    public func createKey(usage: String, spec: String, description: String) async throws -> KeyMetadata {
        struct Response: Decodable { let KeyMetadata: KeyMetadata }
        return try await call("CreateKey", keyID: "(new key)", ["KeyUsage": usage, "KeySpec": spec, "Description": description], as: Response.self).KeyMetadata
    }

    public func encrypt(keyID: String, plaintext: [UInt8], context: [String: String]) async throws -> [UInt8] {
        struct Response: Decodable { let CiphertextBlob: String }
        let response = try await call("Encrypt", keyID: keyID, [
            "KeyId": keyID, "Plaintext": Data(plaintext).base64EncodedString(), "EncryptionContext": context,
        ], as: Response.self)
        return try Self.decodeBase64(response.CiphertextBlob, field: "CiphertextBlob")
    }

    public func decrypt(keyID: String, ciphertext: [UInt8], context: [String: String]) async throws -> [UInt8] {
        struct Response: Decodable { let Plaintext: String }
        let response = try await call("Decrypt", keyID: keyID, [
            "KeyId": keyID, "CiphertextBlob": Data(ciphertext).base64EncodedString(), "EncryptionContext": context,
        ], as: Response.self)
        return try Self.decodeBase64(response.Plaintext, field: "Plaintext")
    }

    /// Signs a message of at most 4096 bytes with RSASSA-PKCS1-v1_5-SHA-256 (`MessageType: RAW`).
    public func signRS256(keyID: String, message: [UInt8]) async throws -> [UInt8] {
        guard message.count <= 4096 else {
            throw KMSError(.refused, "KMS signs at most 4096 bytes of raw message; this one has \(message.count)")
        }
        struct Response: Decodable { let Signature: String }
        let response = try await call("Sign", keyID: keyID, [
            "KeyId": keyID, "Message": Data(message).base64EncodedString(), "MessageType": "RAW",
            "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256",
        ], as: Response.self)
        return try Self.decodeBase64(response.Signature, field: "Signature")
    }

    /// The DER SubjectPublicKeyInfo of an asymmetric key.
    public func getPublicKey(keyID: String) async throws -> [UInt8] {
        struct Response: Decodable { let PublicKey: String }
        let response = try await call("GetPublicKey", keyID: keyID, ["KeyId": keyID], as: Response.self)
        return try Self.decodeBase64(response.PublicKey, field: "PublicKey")
    }

    // MARK: Transport

    private func call<Response: Decodable>(_ action: String, keyID: String, _ body: [String: Any], as type: Response.Type) async throws -> Response {
        let payload = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        var attempt = 0
        while true {
            attempt += 1
            do {
                let data = try await send(action: action, keyID: keyID, payload: Array(payload))
                count(action, "ok")
                do {
                    return try JSONDecoder().decode(Response.self, from: Data(data))
                } catch {
                    throw KMSError(.unavailable, "KMS \(action) on key \(keyID) answered with an unexpected body")
                }
            } catch let error as RetryableFailure {
                count(action, "error")
                guard attempt < configuration.maximumAttempts else {
                    throw KMSError(.unavailable, exception: error.exception,
                                   "KMS \(action) on key \(keyID) failed after \(attempt) attempts: \(error.reason)")
                }
                let ceiling = configuration.baseBackoff * (1 << (attempt - 1))
                let jitter = Double.random(in: 0...1)
                logger.warning("KMS call failed; retrying", metadata: ["action": "\(action)", "attempt": "\(attempt)", "reason": "\(error.reason)"])
                try await Task.sleep(for: ceiling * jitter)
            } catch {
                count(action, "error")
                throw error
            }
        }
    }

    private struct RetryableFailure: Error {
        let exception: String?
        let reason: String
    }

    private func send(action: String, keyID: String, payload: [UInt8]) async throws -> [UInt8] {
        guard let url = URL(string: configuration.endpoint), let host = url.host else {
            throw KMSError(.refused, "the KMS endpoint \(configuration.endpoint) is not a URL")
        }
        let hostHeader = url.port.map { "\(host):\($0)" } ?? host
        let credentials = try await self.credentials.credentials()
        let unsigned = SigV4Signer.Request(
            method: "POST", path: url.path.isEmpty ? "/" : url.path,
            headers: [("Host", hostHeader), ("Content-Type", "application/x-amz-json-1.1"), ("X-Amz-Target", "TrentService.\(action)")],
            body: payload
        )
        let signed = signer.sign(unsigned, credentials: credentials, date: Date())
        var request = HTTPClientRequest(url: configuration.endpoint.hasSuffix("/") || !url.path.isEmpty ? configuration.endpoint : configuration.endpoint + "/")
        request.method = .POST
        for (name, value) in signed.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: payload))
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000 + configuration.timeout.components.attoseconds / 1_000_000_000))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch let error as KMSError {
            throw error
        } catch {
            throw RetryableFailure(exception: nil, reason: "could not reach \(configuration.endpoint) (\(type(of: error)))")
        }
        let bytes = Array(body.readableBytesView)
        if response.status == .ok { return bytes }

        let (exception, message) = Self.parseError(bytes)
        let status = response.status.code
        if status >= 500 || (exception.map { KMSError.retryableExceptions.contains($0) } ?? false) || status == 429 {
            throw RetryableFailure(exception: exception, reason: "\(exception ?? "HTTP \(status)")\(message.map { ": \($0)" } ?? "")")
        }
        throw Self.refusal(action: action, keyID: keyID, exception: exception, message: message, status: status)
    }

    static func parseError(_ bytes: [UInt8]) -> (String?, String?) {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return (nil, nil) }
        let type = (object["__type"] as? String).map { String($0.split(separator: "#").last ?? "") }
        let message = (object["message"] ?? object["Message"]) as? String
        return (type, message)
    }

    static func refusal(action: String, keyID: String, exception: String?, message: String?, status: UInt) -> KMSError {
        let name = exception ?? "HTTP \(status)"
        let detail = message.map { " (\($0))" } ?? ""
        let fix: String
        switch exception {
        case "AccessDeniedException":
            fix = "grant kms:\(action) on this key to Coffer's IAM role"
        case "NotFoundException":
            fix = "check the key id, its region and the account"
        case "DisabledException":
            fix = "enable the key"
        case "KMSInvalidStateException":
            fix = "the key is pending deletion or import; cancel the deletion or choose another key"
        case "InvalidCiphertextException", "IncorrectKeyException":
            return KMSError(.invalidCiphertext, exception: exception, "KMS \(action) with key \(keyID): the blob was not encrypted under this key and encryption context (\(name))")
        case "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException", "IncompleteSignature", "MissingAuthenticationToken":
            fix = "check the AWS credentials Coffer runs with"
        default:
            fix = "see the KMS documentation for \(name)"
        }
        return KMSError(.refused, exception: exception, "KMS \(action) on key \(keyID) was refused: \(name)\(detail); \(fix)")
    }

    private static func decodeBase64(_ text: String, field: String) throws -> [UInt8] {
        guard let data = Data(base64Encoded: text) else { throw KMSError(.unavailable, "KMS answered a \(field) that is not base64") }
        return [UInt8](data)
    }

    private func count(_ action: String, _ outcome: String) {
        counts.withLock { $0["\(action) \(outcome)", default: 0] += 1 }
    }
}
