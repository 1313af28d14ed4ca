import CofferCrypto
import CofferStore
import Foundation
import Logging

/// Everything Coffer reads from its environment (CONTRACT §1), parsed and checked once
/// at the edge, then passed down. Holds the root key material, so it is never printed:
/// ``summary`` is the printable view.
public struct CofferConfiguration: Sendable {
    /// The configured root of the key hierarchy.
    public enum Encryption: Sendable {
        case rsa(RSAPrivateKey)
        case kms(encryptionKeyID: String, signingKeyID: String, aws: AWSSettings)
    }

    /// Where KMS is and how to authenticate to it.
    public struct AWSSettings: Sendable {
        /// From `AWS_REGION`, `AWS_DEFAULT_REGION`, or the key ARN.
        public var region: String
        /// `AWS_ENDPOINT_URL_KMS` or `AWS_ENDPOINT_URL`; nil for the regional default.
        public var kmsEndpoint: String?
        /// The `AWS_*` variables, for the credential chain.
        public var environment: [String: String]
    }

    /// How log lines are written.
    public enum LogFormat: String, Sendable {
        case json, text
    }

    public var encryption: Encryption
    /// The root being migrated away from (`PREVIOUS_ENCRYPTION_*`), if any. Its KMS
    /// variant has an empty signing key id.
    public var previousEncryption: Encryption?
    public var database: DatabaseSettings
    public var httpHost: String = "0.0.0.0"
    public var httpPort: Int = 8080
    public var tlsCertificateFile: String?
    public var tlsKeyFile: String?
    public var jwtIssuer: String = "coffer"
    public var jwtAudience: String = "coffer-api"
    /// Lifetime of issued tokens, seconds.
    public var tokenLifetime: Int = 3600
    /// Age after which a data key is rotated automatically, seconds; nil is off.
    public var dataKeyRotationPeriod: Int?
    public var logLevel: Logger.Level = .info
    public var logFormat: LogFormat
    /// Throttles and bounds (`COFFER_TOKEN_RATE_*`, `COFFER_MAX_*`, `COFFER_AUDIT_REFUSAL_WINDOW`).
    public var limits: CofferLimits

    /// The longest token lifetime accepted.
    public static let maximumTokenLifetime = 24 * 3600

    /// Parses the environment.
    /// - Parameters:
    ///   - environment: the process environment (or a test's dictionary).
    ///   - stdoutIsTerminal: decides the default log format.
    /// - Throws: ``ConfigurationError`` naming the first variable that is wrong.
    public init(environment: [String: String], stdoutIsTerminal: Bool = false) throws {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
            return raw
        }

        self.encryption = try Self.encryption(prefix: "", environment: environment)!
        self.previousEncryption = try Self.encryption(prefix: "PREVIOUS_", environment: environment)

        self.database = try Self.databaseSettings(environment: environment)

        if let host = value("COFFER_HTTP_HOST") { self.httpHost = host }
        if let port = value("COFFER_HTTP_PORT") {
            guard let number = Int(port), (1...65535).contains(number) else {
                throw ConfigurationError("COFFER_HTTP_PORT", "must be a port number from 1 to 65535")
            }
            self.httpPort = number
        }
        self.tlsCertificateFile = value("COFFER_TLS_CERT_FILE")
        self.tlsKeyFile = value("COFFER_TLS_KEY_FILE")
        if (tlsCertificateFile == nil) != (tlsKeyFile == nil) {
            throw ConfigurationError(tlsCertificateFile == nil ? "COFFER_TLS_CERT_FILE" : "COFFER_TLS_KEY_FILE",
                                     "must be set together with \(tlsCertificateFile == nil ? "COFFER_TLS_KEY_FILE" : "COFFER_TLS_CERT_FILE") to serve HTTPS")
        }
        if let issuer = value("COFFER_JWT_ISSUER") { self.jwtIssuer = issuer }
        if let audience = value("COFFER_JWT_AUDIENCE") { self.jwtAudience = audience }
        if let ttl = value("COFFER_TOKEN_TTL") {
            guard let seconds = DurationText.seconds(ttl), seconds >= 60, seconds <= Self.maximumTokenLifetime else {
                throw ConfigurationError("COFFER_TOKEN_TTL", "must be a duration from 1m to 24h, such as 15m or 1h")
            }
            self.tokenLifetime = seconds
        }
        if let period = value("COFFER_DATA_KEY_ROTATION_PERIOD") {
            guard let seconds = DurationText.seconds(period), seconds >= 3600 else {
                throw ConfigurationError("COFFER_DATA_KEY_ROTATION_PERIOD", "must be a duration of at least 1h, such as 7d")
            }
            self.dataKeyRotationPeriod = seconds
        }
        self.limits = try CofferLimits(environment: environment)
        if let level = value("LOG_LEVEL") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw ConfigurationError("LOG_LEVEL", "must be one of trace, debug, info, notice, warning, error, critical")
            }
            self.logLevel = parsed
        }
        if let format = value("LOG_FORMAT") {
            guard let parsed = LogFormat(rawValue: format.lowercased()) else {
                throw ConfigurationError("LOG_FORMAT", "must be `json` or `text`")
            }
            self.logFormat = parsed
        } else {
            self.logFormat = stdoutIsTerminal ? .text : .json
        }
    }

    /// The root described by `<prefix>ENCRYPTION_*`. With the `PREVIOUS_` prefix the
    /// variables are optional (nil when `PREVIOUS_ENCRYPTION_TYPE` is unset) and a KMS
    /// root needs no signing key.
    static func encryption(prefix: String, environment: [String: String]) throws -> Encryption? {
        func value(_ name: String) -> String? {
            guard let raw = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !raw.isEmpty else { return nil }
            return raw
        }
        let previous = !prefix.isEmpty
        let typeVariable = "\(prefix)ENCRYPTION_TYPE"
        guard let type = value(typeVariable)?.lowercased() ?? (previous ? nil : "kms") else { return nil }
        switch type {
        case "rsa":
            let variable = "\(prefix)ENCRYPTION_RSA_PRIVATE_KEY"
            guard let base64 = environment[variable], !base64.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw ConfigurationError(variable, "is required when \(typeVariable)=rsa; set it to the base64 of an unencrypted RSA private key PEM (`base64 -w0 key.pem`)")
            }
            do {
                return .rsa(try RSAPrivateKey(base64PEM: base64))
            } catch let error as RSAKeyError {
                throw ConfigurationError(variable, error.reason)
            }
        case "kms":
            let encryptionVariable = "\(prefix)ENCRYPTION_KMS_ENCRYPTION_KEY_ID"
            guard let encryptionKey = value(encryptionVariable) else {
                throw ConfigurationError(encryptionVariable, previous
                    ? "is required when \(typeVariable)=kms; set it to the KMS key that wraps the stored key-encryption key now"
                    : "is required when ENCRYPTION_TYPE=kms (the default); set it to a SYMMETRIC_DEFAULT ENCRYPT_DECRYPT KMS key id, ARN or alias, or set ENCRYPTION_TYPE=rsa")
            }
            let signingKey = value("\(prefix)ENCRYPTION_KMS_SIGNING_KEY_ID")
            if !previous, signingKey == nil {
                throw ConfigurationError("ENCRYPTION_KMS_SIGNING_KEY_ID", "is required when ENCRYPTION_TYPE=kms; set it to an RSA_4096 SIGN_VERIFY KMS key id, ARN or alias")
            }
            let region = value("AWS_REGION") ?? value("AWS_DEFAULT_REGION") ?? Self.region(fromARN: encryptionKey) ?? signingKey.flatMap(Self.region(fromARN:))
            guard let region else {
                throw ConfigurationError("AWS_REGION", "is required for \(typeVariable)=kms unless the key ids are ARNs")
            }
            let endpoint = value("AWS_ENDPOINT_URL_KMS") ?? value("AWS_ENDPOINT_URL")
            let endpointVariable = value("AWS_ENDPOINT_URL_KMS") != nil ? "AWS_ENDPOINT_URL_KMS" : "AWS_ENDPOINT_URL"
            if let endpoint {
                guard let url = URL(string: endpoint), let host = url.host else {
                    throw ConfigurationError(endpointVariable, "must be a URL such as https://kms.eu-west-1.amazonaws.com")
                }
                // Key material and signatures cross this connection.
                guard url.scheme?.lowercased() == "https" || (url.scheme?.lowercased() == "http" && Transport.isLoopback(host)) else {
                    throw ConfigurationError(endpointVariable, "must be https unless it is on loopback (localhost, 127.0.0.0/8, ::1)")
                }
            }
            if let uri = value("AWS_CONTAINER_CREDENTIALS_FULL_URI"), !Transport.isAllowedContainerCredentialsURI(uri) {
                throw ConfigurationError(
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "must be https, or http on loopback, 169.254.170.2, 169.254.170.23 or fd00:ec2::23 (as the AWS SDKs allow)"
                )
            }
            let aws = AWSSettings(region: region, kmsEndpoint: endpoint, environment: environment.filter { $0.key.hasPrefix("AWS_") })
            return .kms(encryptionKeyID: encryptionKey, signingKeyID: signingKey ?? "", aws: aws)
        default:
            throw ConfigurationError(typeVariable, "must be `kms` or `rsa`")
        }
    }

    /// The region of a KMS ARN (`arn:aws:kms:REGION:ACCOUNT:key/ID` or `alias/NAME`).
    static func region(fromARN id: String) -> String? {
        let parts = id.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count >= 6, parts[0] == "arn", parts[2] == "kms", !parts[3].isEmpty else { return nil }
        return String(parts[3])
    }

    /// Parses just `DATABASE_URL`, for commands that need no root key.
    public static func databaseSettings(environment: [String: String]) throws -> DatabaseSettings {
        guard let url = environment["DATABASE_URL"]?.trimmingCharacters(in: .whitespacesAndNewlines), !url.isEmpty else {
            throw ConfigurationError("DATABASE_URL", "is required; set it to postgres://user:password@host:port/database?sslmode=prefer")
        }
        do {
            return try DatabaseSettings(url: url)
        } catch let error as DatabaseSettingsError {
            throw ConfigurationError("DATABASE_URL", error.reason)
        }
    }

    /// What would be used, without any secret: for `coffer config check` and start-up logs.
    /// What is valid but weaker than it should be in production, one sentence each.
    public var warnings: [String] {
        var warnings: [String] = []
        if database.sslMode != .verifyFull {
            warnings.append(
                "DATABASE_URL has sslmode=\(database.sslMode.rawValue): the database server is not verified; use sslmode=verify-full (with sslrootcert=) in production"
            )
        }
        return warnings
    }

    public var summary: [(String, String)] {
        var lines: [(String, String)] = []
        switch encryption {
        case .rsa(let key):
            lines.append(("encryption", "rsa"))
            lines.append(("rsa key", "\(key.keySizeInBits) bits, fingerprint \(key.publicKey.fingerprint)"))
            lines.append(("jwt kid", key.publicKey.jwkThumbprint))
        case .kms(let encryptionKeyID, let signingKeyID, let aws):
            lines.append(("encryption", "kms"))
            lines.append(("kms encryption key", encryptionKeyID))
            lines.append(("kms signing key", signingKeyID))
            lines.append(("aws region", aws.region))
            lines.append(("kms endpoint", aws.kmsEndpoint ?? "regional default"))
        }
        switch previousEncryption {
        case .rsa(let key)?: lines.append(("previous root", "rsa, fingerprint \(key.publicKey.fingerprint)"))
        case .kms(let encryptionKeyID, _, _)?: lines.append(("previous root", "kms \(encryptionKeyID)"))
        case nil: break
        }
        lines.append(("database", database.redactedDescription))
        lines.append(("listen", "\(httpHost):\(httpPort)\(tlsCertificateFile == nil ? "" : " (https)")"))
        lines.append(("jwt", "iss=\(jwtIssuer) aud=\(jwtAudience) ttl=\(tokenLifetime)s"))
        lines.append(("log", "\(logLevel.rawValue) \(logFormat.rawValue)"))
        lines.append(("limits", limits.summary))
        return lines
    }
}

extension CofferConfiguration {
    /// `COFFER_DESTRUCTION_BATCH_SIZE`: values re-encrypted per transaction by a destruction job.
    public static func destructionBatchSize(environment: [String: String]) throws -> Int {
        guard let text = environment["COFFER_DESTRUCTION_BATCH_SIZE"], !text.isEmpty else { return 500 }
        guard let size = Int(text), (1...10_000).contains(size) else {
            throw ConfigurationError("COFFER_DESTRUCTION_BATCH_SIZE", "must be an integer from 1 to 10000")
        }
        return size
    }

    /// `COFFER_DESTRUCTION_BATCH_PAUSE`: a pause between a destruction job's batches, to
    /// bound the load it puts on the database (e.g. `50ms`; default none).
    public static func destructionBatchPause(environment: [String: String]) throws -> Duration {
        guard let text = environment["COFFER_DESTRUCTION_BATCH_PAUSE"], !text.isEmpty else { return .zero }
        let milliseconds: Int?
        if text.hasSuffix("ms") { milliseconds = Int(text.dropLast(2)) } else { milliseconds = DurationText.seconds(text).map { $0 * 1000 } }
        guard let milliseconds, (0...60_000).contains(milliseconds) else {
            throw ConfigurationError("COFFER_DESTRUCTION_BATCH_PAUSE", "must be a duration from 0ms to 60s, such as 50ms or 1s")
        }
        return .milliseconds(milliseconds)
    }
}
