import CofferCore
import CofferTestSupport
import Foundation
import Testing

@Suite struct ConfigurationTests {
    static let keyValue = TestKeys.environmentValue(TestKeys.primary)
    static let base = [
        "ENCRYPTION_TYPE": "rsa",
        "ENCRYPTION_RSA_PRIVATE_KEY": keyValue,
        "DATABASE_URL": "postgres://coffer:supersecretpw@db:5432/coffer?sslmode=disable",
    ]

    @Test func validRSAEnvironmentParsesWithDefaults() throws {
        let configuration = try CofferConfiguration(environment: Self.base)
        #expect(configuration.httpHost == "0.0.0.0")
        #expect(configuration.httpPort == 8080)
        #expect(configuration.jwtIssuer == "coffer")
        #expect(configuration.jwtAudience == "coffer-api")
        #expect(configuration.tokenLifetime == 3600)
        #expect(configuration.logFormat == .json)
        let summary = configuration.summary.map { "\($0.0) \($0.1)" }.joined(separator: "\n")
        #expect(summary.contains(TestKeys.primary.publicKey.fingerprint))
        #expect(!summary.contains("supersecretpw"))
        #expect(!summary.contains(Self.keyValue.prefix(40)))
    }

    @Test func previousRootIsOptionalAndAKMSOneNeedsNoSigningKey() throws {
        #expect(try CofferConfiguration(environment: Self.base).previousEncryption == nil)
        var environment = Self.base
        environment.merge(["PREVIOUS_ENCRYPTION_TYPE": "kms", "PREVIOUS_ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "arn:aws:kms:eu-west-1:123456789012:key/old"]) { $1 }
        guard case .kms(let keyID, let signing, let aws)? = try CofferConfiguration(environment: environment).previousEncryption else {
            Issue.record("no previous kms root")
            return
        }
        #expect(keyID == "arn:aws:kms:eu-west-1:123456789012:key/old")
        #expect(signing.isEmpty)
        #expect(aws.region == "eu-west-1")
        environment = Self.base
        environment.merge(["PREVIOUS_ENCRYPTION_TYPE": "rsa", "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY": TestKeys.environmentValue(TestKeys.other)]) { $1 }
        let configuration = try CofferConfiguration(environment: environment)
        guard case .rsa(let key)? = configuration.previousEncryption else {
            Issue.record("no previous rsa root")
            return
        }
        #expect(key.publicKey.fingerprint == TestKeys.other.publicKey.fingerprint)
        let summary = configuration.summary.map { "\($0.0) \($0.1)" }.joined(separator: "\n")
        #expect(summary.contains("previous root rsa, fingerprint \(TestKeys.other.publicKey.fingerprint)"))
        #expect(!summary.contains(TestKeys.environmentValue(TestKeys.other).prefix(40)))
    }

    @Test(arguments: [
        (["ENCRYPTION_TYPE": "vault"], "ENCRYPTION_TYPE"),
        (["ENCRYPTION_TYPE": "kms"], "ENCRYPTION_KMS_ENCRYPTION_KEY_ID"),
        (["ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "k"], "ENCRYPTION_KMS_SIGNING_KEY_ID"),
        (["ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "k", "ENCRYPTION_KMS_SIGNING_KEY_ID": "s"], "AWS_REGION"),
        (["ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "k", "ENCRYPTION_KMS_SIGNING_KEY_ID": "s", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_KMS": "not a url"], "AWS_ENDPOINT_URL_KMS"),
        (["ENCRYPTION_RSA_PRIVATE_KEY": ""], "ENCRYPTION_RSA_PRIVATE_KEY"),
        (["ENCRYPTION_RSA_PRIVATE_KEY": "%%%not-base64%%%"], "ENCRYPTION_RSA_PRIVATE_KEY"),
        (["DATABASE_URL": ""], "DATABASE_URL"),
        (["DATABASE_URL": "mysql://u:supersecretpw@h/db"], "DATABASE_URL"),
        (["COFFER_HTTP_PORT": "http"], "COFFER_HTTP_PORT"),
        (["COFFER_TOKEN_TTL": "48h"], "COFFER_TOKEN_TTL"),
        (["COFFER_TOKEN_TTL": "soon"], "COFFER_TOKEN_TTL"),
        (["COFFER_DATA_KEY_ROTATION_PERIOD": "7x"], "COFFER_DATA_KEY_ROTATION_PERIOD"),
        (["LOG_LEVEL": "loud"], "LOG_LEVEL"),
        (["LOG_FORMAT": "xml"], "LOG_FORMAT"),
        (["COFFER_TLS_CERT_FILE": "/tmp/cert.pem"], "COFFER_TLS_KEY_FILE"),
        (["PREVIOUS_ENCRYPTION_TYPE": "vault"], "PREVIOUS_ENCRYPTION_TYPE"),
        (["PREVIOUS_ENCRYPTION_TYPE": "rsa"], "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY"),
        (["PREVIOUS_ENCRYPTION_TYPE": "rsa", "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY": "%%%not-base64%%%"], "PREVIOUS_ENCRYPTION_RSA_PRIVATE_KEY"),
        (["PREVIOUS_ENCRYPTION_TYPE": "kms"], "PREVIOUS_ENCRYPTION_KMS_ENCRYPTION_KEY_ID"),
    ])
    func eachBadInputNamesItsVariableAndNoSecret(overrides: [String: String], variable: String) {
        var environment = Self.base
        environment.merge(overrides) { $1 }
        if overrides["ENCRYPTION_RSA_PRIVATE_KEY"] == "" { environment.removeValue(forKey: "ENCRYPTION_RSA_PRIVATE_KEY") }
        do {
            _ = try CofferConfiguration(environment: environment)
            Issue.record("accepted \(overrides)")
        } catch let error as ConfigurationError {
            #expect(error.variable == variable)
            #expect(!error.description.contains("supersecretpw"))
            #expect(!error.description.contains(Self.keyValue.prefix(40)))
            #expect(!error.description.contains("\n"))
        } catch {
            Issue.record("unexpected \(type(of: error))")
        }
    }

    @Test func missingEncryptionTypeMeansKMSAsTheContractSays() {
        var environment = Self.base
        environment.removeValue(forKey: "ENCRYPTION_TYPE")
        #expect(throws: ConfigurationError.self) { try CofferConfiguration(environment: environment) }
    }

    @Test func kmsRegionComesFromTheEnvironmentOrTheKeyARN() throws {
        var environment = Self.base
        environment.merge([
            "ENCRYPTION_TYPE": "kms",
            "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "ENCRYPTION_KMS_SIGNING_KEY_ID": "alias/coffer-signing",
            "AWS_ENDPOINT_URL_KMS": "http://127.0.0.1:4566",
        ]) { $1 }
        let configuration = try CofferConfiguration(environment: environment)
        guard case .kms(_, let signing, let aws) = configuration.encryption else { Issue.record("not kms"); return }
        #expect(signing == "alias/coffer-signing")
        #expect(aws.region == "eu-central-1")
        #expect(aws.kmsEndpoint == "http://127.0.0.1:4566")
        environment["AWS_REGION"] = "us-west-2"
        guard case .kms(_, _, let explicit) = try CofferConfiguration(environment: environment).encryption else { return }
        #expect(explicit.region == "us-west-2")
    }

    @Test func overridesAreRead() throws {
        var environment = Self.base
        environment.merge([
            "COFFER_HTTP_HOST": "127.0.0.1", "COFFER_HTTP_PORT": "9000", "COFFER_JWT_ISSUER": "i",
            "COFFER_JWT_AUDIENCE": "a", "COFFER_TOKEN_TTL": "15m", "COFFER_DATA_KEY_ROTATION_PERIOD": "7d",
            "LOG_LEVEL": "DEBUG", "LOG_FORMAT": "text",
        ]) { $1 }
        let configuration = try CofferConfiguration(environment: environment)
        #expect(configuration.httpHost == "127.0.0.1")
        #expect(configuration.httpPort == 9000)
        #expect(configuration.tokenLifetime == 900)
        #expect(configuration.dataKeyRotationPeriod == 7 * 86400)
        #expect(configuration.logLevel == .debug)
        #expect(configuration.logFormat == .text)
    }

    @Test(arguments: [("90s", 90), ("15m", 900), ("1h", 3600), ("1h30m", 5400), ("7d", 604_800)])
    func durationsParse(text: String, seconds: Int) {
        #expect(DurationText.seconds(text) == seconds)
    }

    @Test(arguments: ["", "0s", "15", "m", "1y", "-1h", "1.5h"])
    func badDurationsDoNot(text: String) {
        #expect(DurationText.seconds(text) == nil)
    }
}

/// Transport: key material and credentials never cross a plain connection that can leave
/// the host (issue 19, point 6).
@Suite struct TransportConfigurationTests {
    static let kms = [
        "ENCRYPTION_TYPE": "kms", "ENCRYPTION_KMS_ENCRYPTION_KEY_ID": "k", "ENCRYPTION_KMS_SIGNING_KEY_ID": "s", "AWS_REGION": "eu-west-1",
        "DATABASE_URL": "postgres://coffer:pw@db:5432/coffer?sslmode=verify-full",
    ]

    static func refusal(_ overrides: [String: String]) -> String? {
        do {
            _ = try CofferConfiguration(environment: kms.merging(overrides) { $1 })
            return nil
        } catch let error as ConfigurationError {
            return error.variable
        } catch {
            return "\(error)"
        }
    }

    @Test func aKMSEndpointIsHTTPSUnlessOnLoopback() {
        #expect(Self.refusal(["AWS_ENDPOINT_URL_KMS": "http://kms.example.com"]) == "AWS_ENDPOINT_URL_KMS")
        #expect(Self.refusal(["AWS_ENDPOINT_URL": "http://10.0.0.5:4566"]) == "AWS_ENDPOINT_URL")
        #expect(Self.refusal(["AWS_ENDPOINT_URL_KMS": "https://kms.example.com"]) == nil)
        for loopback in ["http://127.0.0.1:4566", "http://localhost:4566", "http://[::1]:4566", "http://127.9.8.7"] {
            #expect(Self.refusal(["AWS_ENDPOINT_URL_KMS": loopback]) == nil, "\(loopback)")
        }
    }

    @Test func containerCredentialsComeOnlyFromTheAddressesTheAWSSDKsAllow() {
        for allowed in ["https://creds.example.com/x", "http://169.254.170.2/v2/credentials", "http://169.254.170.23/v1/credentials",
                        "http://[fd00:ec2::23]/v1/credentials", "http://127.0.0.1:9911/creds"] {
            #expect(Self.refusal(["AWS_CONTAINER_CREDENTIALS_FULL_URI": allowed]) == nil, "\(allowed)")
        }
        for refused in ["http://attacker.example.com/creds", "http://10.0.0.1/creds", "file:///etc/passwd", "http://169.254.169.254/latest"] {
            #expect(Self.refusal(["AWS_CONTAINER_CREDENTIALS_FULL_URI": refused]) == "AWS_CONTAINER_CREDENTIALS_FULL_URI", "\(refused)")
        }
    }

    @Test func aDatabaseConnectionThatIsNotVerifyFullIsWarnedAbout() throws {
        #expect(try CofferConfiguration(environment: Self.kms).warnings.isEmpty)
        for mode in ["disable", "prefer", "require", "verify-ca"] {
            let configuration = try CofferConfiguration(environment: Self.kms.merging(["DATABASE_URL": "postgres://coffer:pw@db:5432/coffer?sslmode=\(mode)"]) { $1 })
            #expect(configuration.warnings.contains { $0.contains("sslmode=\(mode)") && $0.contains("verify-full") }, "\(mode)")
            #expect(!configuration.warnings.joined().contains("pw@"))
        }
    }
}
