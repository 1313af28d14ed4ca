import CofferCore
import CofferCrypto
import CofferKeys
import Foundation
import Logging

/// A configured root key and, in kms mode, the KMS client behind it (for metrics).
struct RootKey: Sendable {
    let provider: any RootKeyProvider & TokenSigner
    let kms: KMSClient?
}

/// The process environment, read once at the edge and passed to the libraries.
enum ProcessEnvironment {
    /// The environment as the process started with it, read once (``ProcessHygiene`` then
    /// wipes the secret variables from the process's own environment).
    static let variables: [String: String] = ProcessInfo.processInfo.environment

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// Parses the full configuration (root key included).
    static func configuration() throws -> CofferConfiguration {
        try CofferConfiguration(environment: variables, stdoutIsTerminal: stdoutIsTerminal)
    }

    /// The root key of a configuration, which also signs tokens. In kms mode this checks
    /// both keys with KMS and fetches the signing public key (bounded retries).
    static func rootKey(for configuration: CofferConfiguration, logger: Logger) async throws -> RootKey {
        switch configuration.encryption {
        case .rsa(let key):
            return RootKey(provider: RSARootKey(privateKey: key), kms: nil)
        case .kms(let encryptionKeyID, let signingKeyID, let aws):
            let credentials = AWSCredentialProvider(
                source: AWSCredentialProvider.source(environment: aws.environment, region: aws.region), logger: logger
            )
            let client = KMSClient(configuration: .init(region: aws.region, endpoint: aws.kmsEndpoint), credentials: credentials, logger: logger)
            let root = try await KMSRootKey.connect(client: client, encryptionKeyID: encryptionKeyID, signingKeyID: signingKeyID)
            return RootKey(provider: root, kms: client)
        }
    }

    /// The previous root (`PREVIOUS_ENCRYPTION_*`) during a root key migration, if set.
    static func previousRoot(for configuration: CofferConfiguration, logger: Logger) async throws -> (any RootKeyProvider)? {
        switch configuration.previousEncryption {
        case nil:
            return nil
        case .rsa(let key)?:
            return RSARootKey(privateKey: key)
        case .kms(let encryptionKeyID, _, let aws)?:
            let credentials = AWSCredentialProvider(
                source: AWSCredentialProvider.source(environment: aws.environment, region: aws.region), logger: logger
            )
            let client = KMSClient(configuration: .init(region: aws.region, endpoint: aws.kmsEndpoint), credentials: credentials, logger: logger)
            return try await KMSRootKey.connectWrapping(client: client, encryptionKeyID: encryptionKeyID, variable: "PREVIOUS_ENCRYPTION_KMS_ENCRYPTION_KEY_ID")
        }
    }

    /// What the services of this process are built from: the root key(s), the token rules
    /// and the pace of background key work, all from `configuration`.
    static func settings(for configuration: CofferConfiguration, logger: Logger) async throws -> CofferSettings {
        let rootKey = try await rootKey(for: configuration, logger: logger)
        // While a previous RSA root is configured its public key stays published, so tokens it
        // signed stay valid until they expire.
        var previousPublicKeys: [RSAPublicKey] = []
        if case .rsa(let key)? = configuration.previousEncryption { previousPublicKeys.append(key.publicKey) }
        var kmsCallCounts: (@Sendable () -> [String: Int])?
        if let client = rootKey.kms { kmsCallCounts = { client.callCounts } }
        return CofferSettings(
            root: rootKey.provider, previousRoot: try await previousRoot(for: configuration, logger: logger),
            previousVerificationKeys: previousPublicKeys, issuer: configuration.jwtIssuer, audience: configuration.jwtAudience,
            tokenLifetime: configuration.tokenLifetime,
            destructionBatchSize: try CofferConfiguration.destructionBatchSize(environment: variables),
            destructionBatchPause: try CofferConfiguration.destructionBatchPause(environment: variables),
            dataKeyRotationPeriod: configuration.dataKeyRotationPeriod, kmsCallCounts: kmsCallCounts, limits: configuration.limits
        )
    }

    /// Sets up logging once: JSON lines or text to `stream`, at `level`.
    static func bootstrapLogging(level: Logger.Level, format: CofferConfiguration.LogFormat, toStandardError: Bool) {
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler
            switch format {
            case .json: handler = JSONLogHandler(label: label, toStandardError: toStandardError)
            case .text: handler = toStandardError ? StreamLogHandler.standardError(label: label) : StreamLogHandler.standardOutput(label: label)
            }
            handler.logLevel = level
            return handler
        }
    }

    /// Log settings from the environment alone, for commands that need no root key.
    static func logSettings() -> (Logger.Level, CofferConfiguration.LogFormat) {
        let level = variables["LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        let format = variables["LOG_FORMAT"].flatMap { CofferConfiguration.LogFormat(rawValue: $0.lowercased()) }
            ?? (isatty(STDERR_FILENO) == 1 ? .text : .json)
        return (level, format)
    }
}
