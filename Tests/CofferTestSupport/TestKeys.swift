import CofferCrypto
import Foundation

/// RSA keys for tests, generated once per test process (generation is slow). Tests
/// that hand a key to a process or a tool write it to a temporary folder.
public enum TestKeys {
    public static let primary: RSAPrivateKey = try! RSAPrivateKey.generate(bits: 2048)
    public static let other: RSAPrivateKey = try! RSAPrivateKey.generate(bits: 2048)

    /// The `ENCRYPTION_RSA_PRIVATE_KEY` value of a key.
    public static func environmentValue(_ key: RSAPrivateKey) -> String {
        Data(key.pkcs8PEM.utf8).base64EncodedString()
    }
}
