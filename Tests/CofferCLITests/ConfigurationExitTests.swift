import CofferCrypto
import CofferTestSupport
import Crypto
import CryptoExtras
import Foundation
import Testing

/// Every bad input of the configuration exits 2 with one line naming the variable, and
/// never prints a secret.
@Suite struct ConfigurationExitTests {
    static let secretPassword = "pw-\(UUID().uuidString)"
    static let databaseURL = "postgres://coffer:\(secretPassword)@127.0.0.1:1/coffer?sslmode=disable"

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static let cases: [(String, [String: String], String)] = {
        let smallKey = try! _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024)).pkcs8PEMRepresentation
        let ecKey = P256.Signing.PrivateKey().pemRepresentation
        return [
            ("missing key", [:], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("not base64", ["ENCRYPTION_RSA_PRIVATE_KEY": "@@not base64@@"], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("raw PEM instead of base64", ["ENCRYPTION_RSA_PRIVATE_KEY": TestKeys.primary.pkcs8PEM], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("not a PEM", ["ENCRYPTION_RSA_PRIVATE_KEY": base64("just some text")], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("encrypted PEM", ["ENCRYPTION_RSA_PRIVATE_KEY": base64("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n")], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("EC key", ["ENCRYPTION_RSA_PRIVATE_KEY": base64(ecKey)], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("1024-bit key", ["ENCRYPTION_RSA_PRIVATE_KEY": base64(smallKey)], "ENCRYPTION_RSA_PRIVATE_KEY"),
            ("unknown type", ["ENCRYPTION_TYPE": "vault"], "ENCRYPTION_TYPE"),
            ("malformed database URL", ["DATABASE_URL": "postgres//coffer:\(secretPassword)@db"], "DATABASE_URL"),
            ("missing database URL", ["DATABASE_URL": ""], "DATABASE_URL"),
        ]
    }()

    /// `api-keys` loads the keys (each key row carries a code), so it checks the root key
    /// configuration as `serve` does.
    @Test(arguments: ["migrate", "serve", "config", "api-keys"])
    func badInputExitsTwoWithOneLine(command: String) async throws {
        let goodKey = TestKeys.environmentValue(TestKeys.primary)
        for (name, overrides, variable) in Self.cases {
            var environment = ["ENCRYPTION_TYPE": "rsa", "DATABASE_URL": Self.databaseURL]
            if name != "missing key" { environment["ENCRYPTION_RSA_PRIVATE_KEY"] = goodKey }
            environment.merge(overrides) { $1 }
            let arguments = command == "config" ? ["config", "check"] : command == "api-keys" ? ["api-keys", "list"] : [command]
            let result = try await ProcessRunner.run(try TestEnvironment.binary(), arguments, environment: environment)
            #expect(result.status == 2, "\(name): exit \(result.status)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(name): \(result.stderr)")
            #expect(result.stderr.contains(variable), "\(name)")
            #expect(result.stdout.isEmpty, "\(name)")
            for secret in [Self.secretPassword, String(goodKey.prefix(60)), String(goodKey.suffix(60))] {
                let printed = result.stderr.contains(secret)  // a Bool: a failure prints no secret
                #expect(!printed, "\(name) printed a secret")
            }
        }
    }

    @Test func kmsIsTheDefaultAndNeedsItsKeyIDs() async throws {
        let result = try await ProcessRunner.run(try TestEnvironment.binary(), ["migrate"], environment: ["DATABASE_URL": Self.databaseURL])
        #expect(result.status == 2)
        #expect(result.stderr.contains("ENCRYPTION_KMS_ENCRYPTION_KEY_ID"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func badArgumentsExitTwo() async throws {
        let binary = try TestEnvironment.binary()
        #expect(try await ProcessRunner.run(binary, ["no-such-command"]).status == 2)
        #expect(try await ProcessRunner.run(binary, ["api-keys", "create", "--name", "x", "--role", "root"]).status == 2)
        #expect(try await ProcessRunner.run(binary, ["--version"]).stdout.contains("0.1.0"))
        for command in [["--help"], ["migrate", "--help"], ["serve", "--help"], ["api-keys", "create", "--help"], ["config", "check", "--help"]] {
            let result = try await ProcessRunner.run(binary, command)
            #expect(result.status == 0, "\(command)")
            #expect(result.stdout.contains("USAGE"), "\(command)")
        }
    }

    @Test func configCheckPrintsWhatWouldBeUsedWithoutSecrets() async throws {
        let keyValue = TestKeys.environmentValue(TestKeys.primary)
        let result = try await ProcessRunner.run(try TestEnvironment.binary(), ["config", "check"], environment: [
            "ENCRYPTION_TYPE": "rsa", "ENCRYPTION_RSA_PRIVATE_KEY": keyValue, "DATABASE_URL": Self.databaseURL,
        ])
        #expect(result.status == 0)
        #expect(result.stdout.contains(TestKeys.primary.publicKey.fingerprint))
        #expect(result.stdout.contains("127.0.0.1:1/coffer"))
        #expect(result.stdout.contains("token rate per address 300/m, per key 60/m; 1000 elements per owner; 8388608 bytes per page"))
        let (passwordPrinted, keyPrinted) = (result.stdout.contains(Self.secretPassword), result.stdout.contains(String(keyValue.prefix(60))))
        #expect(!passwordPrinted, "config check printed the database password")
        #expect(!keyPrinted, "config check printed the root key")
        // A database connection that is not verify-full is warned about, without the password.
        // Bools, so a failure prints neither stderr nor the password.
        let warned = result.stderr.contains("warning") && result.stderr.contains("sslmode=disable")
        let passwordShown = result.stderr.contains(Self.secretPassword)
        #expect(warned, "no warning about sslmode=disable")
        #expect(!passwordShown, "config check printed the database password")
    }
}
