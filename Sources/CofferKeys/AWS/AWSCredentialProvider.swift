import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Finds AWS credentials the way the AWS SDKs do, in order: static keys from the
/// environment; web identity (IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, via
/// STS `AssumeRoleWithWebIdentity`); container credentials (EKS Pod Identity / ECS:
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` with its authorization token); instance
/// metadata (IMDSv2). Temporary credentials are cached and refreshed five minutes
/// before they expire.
public actor AWSCredentialProvider {
    /// Where credentials come from, decided once from the environment.
    public enum Source: Sendable, Equatable {
        case environment(AWSCredentials)
        case webIdentity(tokenFile: String, roleARN: String, sessionName: String, stsEndpoint: String)
        case container(uri: String, tokenFile: String?, token: String?)
        case instanceMetadata(endpoint: String)
        case none(reason: String)
    }

    public let source: Source
    private let httpClient: HTTPClient
    private let logger: Logger
    private var cached: AWSCredentials?
    private static let refreshMargin: TimeInterval = 300

    public init(source: Source, httpClient: HTTPClient = .shared, logger: Logger) {
        self.source = source
        self.httpClient = httpClient
        self.logger = logger
    }

    /// The chain's choice for an environment (no I/O).
    public static func source(environment env: [String: String], region: String) -> Source {
        func value(_ name: String) -> String? {
            guard let raw = env[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
            return raw
        }
        if let id = value("AWS_ACCESS_KEY_ID"), let secret = value("AWS_SECRET_ACCESS_KEY") {
            return .environment(AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: value("AWS_SESSION_TOKEN")))
        }
        if let tokenFile = value("AWS_WEB_IDENTITY_TOKEN_FILE"), let role = value("AWS_ROLE_ARN") {
            let sts = value("AWS_ENDPOINT_URL_STS") ?? value("AWS_ENDPOINT_URL")
                ?? (region.hasPrefix("cn-") ? "https://sts.\(region).amazonaws.com.cn" : "https://sts.\(region).amazonaws.com")
            return .webIdentity(tokenFile: tokenFile, roleARN: role, sessionName: value("AWS_ROLE_SESSION_NAME") ?? "coffer", stsEndpoint: sts)
        }
        if let uri = value("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            return .container(uri: uri, tokenFile: value("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), token: value("AWS_CONTAINER_AUTHORIZATION_TOKEN"))
        }
        if let relative = value("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            return .container(uri: "http://169.254.170.2\(relative)", tokenFile: nil, token: nil)
        }
        if value("AWS_EC2_METADATA_DISABLED")?.lowercased() == "true" {
            return .none(reason: "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN) or Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI); instance metadata is disabled")
        }
        return .instanceMetadata(endpoint: value("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? "http://169.254.169.254")
    }

    /// A short, secret-free name of the source, for logs and `config check`.
    public nonisolated var sourceDescription: String {
        switch source {
        case .environment: return "environment (AWS_ACCESS_KEY_ID)"
        case .webIdentity(_, let role, _, _): return "web identity (\(role))"
        case .container(let uri, _, _): return "container credentials (\(uri))"
        case .instanceMetadata(let endpoint): return "instance metadata (\(endpoint))"
        case .none: return "none"
        }
    }

    /// Current credentials, fetching or refreshing them when needed.
    public func credentials() async throws -> AWSCredentials {
        if let cached, cached.expiration.map({ $0.timeIntervalSinceNow > Self.refreshMargin }) ?? true {
            return cached
        }
        let fresh = try await fetch()
        cached = fresh
        return fresh
    }

    private func fetch() async throws -> AWSCredentials {
        switch source {
        case .environment(let credentials):
            return credentials
        case .none(let reason):
            throw KMSError(.credentials, reason)
        case .webIdentity(let tokenFile, let roleARN, let sessionName, let endpoint):
            return try await assumeRoleWithWebIdentity(tokenFile: tokenFile, roleARN: roleARN, sessionName: sessionName, endpoint: endpoint)
        case .container(let uri, let tokenFile, let token):
            var headers: [(String, String)] = []
            if let tokenFile {
                guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                    throw KMSError(.credentials, "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(tokenFile)")
                }
                headers.append(("Authorization", text.trimmingCharacters(in: .whitespacesAndNewlines)))
            } else if let token {
                headers.append(("Authorization", token))
            }
            let body = try await get(uri, method: .GET, headers: headers, what: "container credentials")
            return try Self.decodeJSONCredentials(body, what: "container credentials")
        case .instanceMetadata(let endpoint):
            let token = try await get("\(endpoint)/latest/api/token", method: .PUT,
                                      headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], what: "IMDSv2 token")
            let tokenHeader = ("X-aws-ec2-metadata-token", String(decoding: token, as: UTF8.self))
            let roles = try await get("\(endpoint)/latest/meta-data/iam/security-credentials/", method: .GET, headers: [tokenHeader], what: "IMDS role")
            guard let role = String(decoding: roles, as: UTF8.self).split(separator: "\n").first.map(String.init), !role.isEmpty else {
                throw KMSError(.credentials, "instance metadata lists no IAM role; attach an instance profile")
            }
            let body = try await get("\(endpoint)/latest/meta-data/iam/security-credentials/\(role)", method: .GET, headers: [tokenHeader], what: "IMDS credentials")
            return try Self.decodeJSONCredentials(body, what: "instance metadata credentials")
        }
    }

    private func assumeRoleWithWebIdentity(tokenFile: String, roleARN: String, sessionName: String, endpoint: String) async throws -> AWSCredentials {
        guard let token = try? String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else {
            throw KMSError(.credentials, "cannot read the web identity token file \(tokenFile) (AWS_WEB_IDENTITY_TOKEN_FILE)")
        }
        var components = URLComponents()
        components.queryItems = [
            URLQueryItem(name: "Action", value: "AssumeRoleWithWebIdentity"),
            URLQueryItem(name: "Version", value: "2011-06-15"),
            URLQueryItem(name: "RoleArn", value: roleARN),
            URLQueryItem(name: "RoleSessionName", value: sessionName),
            URLQueryItem(name: "WebIdentityToken", value: token),
        ]
        let form = (components.percentEncodedQuery ?? "").replacingOccurrences(of: "+", with: "%2B")
        let body = try await get(endpoint.hasSuffix("/") ? endpoint : endpoint + "/", method: .POST,
                                 headers: [("Content-Type", "application/x-www-form-urlencoded")], body: Array(form.utf8),
                                 what: "STS AssumeRoleWithWebIdentity for \(roleARN)")
        let xml = String(decoding: body, as: UTF8.self)
        func element(_ name: String) -> String? {
            guard let start = xml.range(of: "<\(name)>"), let end = xml.range(of: "</\(name)>", range: start.upperBound..<xml.endIndex) else { return nil }
            return String(xml[start.upperBound..<end.lowerBound])
        }
        guard let id = element("AccessKeyId"), let secret = element("SecretAccessKey"), let session = element("SessionToken") else {
            throw KMSError(.credentials, "STS AssumeRoleWithWebIdentity for \(roleARN) answered without credentials")
        }
        return AWSCredentials(accessKeyID: id, secretAccessKey: secret, sessionToken: session, expiration: element("Expiration").flatMap(Self.parseDate))
    }

    /// One credential request, tried up to three times (with a short backoff) when the
    /// endpoint cannot be reached, times out or answers 5xx, as the AWS SDKs do for
    /// metadata endpoints; 4xx answers are final.
    private func get(_ url: String, method: HTTPMethod, headers: [(String, String)], body: [UInt8]? = nil, what: String) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        var attempt = 0
        while true {
            attempt += 1
            var failure: KMSError
            do {
                let response = try await httpClient.execute(request, timeout: .seconds(5))
                let buffer = try await response.body.collect(upTo: 1 << 20)
                if response.status == .ok { return Array(buffer.readableBytesView) }
                failure = KMSError(.credentials, "\(what) answered HTTP \(response.status.code)")
                if response.status.code < 500 { throw failure }
            } catch let error as KMSError {
                throw error
            } catch {
                failure = KMSError(.credentials, "could not fetch \(what) from \(url) (\(type(of: error)))")
            }
            guard attempt < 3 else { throw failure }
            logger.warning("credential request failed; retrying", metadata: ["what": "\(what)", "attempt": "\(attempt)"])
            try await Task.sleep(for: .milliseconds(200 * attempt))
        }
    }

    static func decodeJSONCredentials(_ body: [UInt8], what: String) throws -> AWSCredentials {
        struct Response: Decodable {
            let AccessKeyId: String
            let SecretAccessKey: String
            let Token: String?
            let Expiration: String?
        }
        guard let response = try? JSONDecoder().decode(Response.self, from: Data(body)) else {
            throw KMSError(.credentials, "\(what) answered without AccessKeyId/SecretAccessKey")
        }
        return AWSCredentials(accessKeyID: response.AccessKeyId, secretAccessKey: response.SecretAccessKey,
                              sessionToken: response.Token, expiration: response.Expiration.flatMap(parseDate))
    }

    static func parseDate(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.date(from: text)
    }
}
