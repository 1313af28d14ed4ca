import CofferCrypto
import Crypto
import CryptoExtras
import Foundation
import Testing

/// One generated key shared by the tests of this file (generation is slow).
let sharedTestKey: RSAPrivateKey = try! RSAPrivateKey.generate(bits: 2048)

@Suite struct RSAKeyTests {
    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    @Test func loadsPKCS8AndPKCS1WithAndWithoutLineBreaks() throws {
        let pkcs8 = sharedTestKey.pkcs8PEM
        #expect(pkcs8.hasPrefix("-----BEGIN PRIVATE KEY-----"))
        let pkcs1 = try _RSA.Signing.PrivateKey(pemRepresentation: pkcs8).pemRepresentation
        #expect(pkcs1.hasPrefix("-----BEGIN RSA PRIVATE KEY-----"))
        for pem in [pkcs8, pkcs1, pkcs8 + "\n", pkcs8.trimmingCharacters(in: .newlines)] {
            let oneLine = Self.base64(pem)
            let wrapped = stride(from: 0, to: oneLine.count, by: 76).map { start -> String in
                let from = oneLine.index(oneLine.startIndex, offsetBy: start)
                let to = oneLine.index(from, offsetBy: min(76, oneLine.count - start))
                return String(oneLine[from..<to])
            }.joined(separator: "\n") + "\n"
            for encoded in [oneLine, wrapped, " \(oneLine)\n"] {
                let key = try RSAPrivateKey(base64PEM: encoded)
                #expect(key.publicKey == sharedTestKey.publicKey)
            }
        }
    }

    @Test(arguments: [
        ("", RSAKeyError.Code.empty),
        ("not base64 at all!", .notBase64),
        ("-----BEGIN PRIVATE KEY-----", .notBase64),
        (RSAKeyTests.base64("hello world, no pem here"), .notPEM),
        (RSAKeyTests.base64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), .notRSA),
        (RSAKeyTests.base64("-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHzBJBgkqhkiG9w0BBQ0wPDAbBgkqhkiG9w0BBQwwDgQI\n-----END ENCRYPTED PRIVATE KEY-----\n"), .encryptedPEM),
        (RSAKeyTests.base64("-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n"), .encryptedPEM),
        (RSAKeyTests.base64(P256.Signing.PrivateKey().pemRepresentation), .notRSA),
        (RSAKeyTests.base64("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"), .malformed),
    ])
    func badInputIsATypedErrorWithoutTheInput(input: String, expected: RSAKeyError.Code) {
        do {
            _ = try RSAPrivateKey(base64PEM: input)
            Issue.record("expected \(expected)")
        } catch let error as RSAKeyError {
            #expect(error.code == expected)
            #expect(!error.reason.isEmpty)
            if input.count > 8 { #expect(!error.reason.contains(input)) }
        } catch {
            Issue.record("unexpected error type \(type(of: error))")
        }
    }

    @Test func keysUnder2048BitsAreRefusedWithTheirSize() throws {
        let small = try _RSA.Signing.PrivateKey(unsafeKeySize: .init(bitCount: 1024))
        do {
            _ = try RSAPrivateKey(pem: small.pkcs8PEMRepresentation)
            Issue.record("a 1024-bit key was accepted")
        } catch let error as RSAKeyError {
            #expect(error.code == .tooSmall)
            #expect(error.reason.contains("1024"))
        }
    }

    @Test func oaepWrapRoundTripsAndOtherKeysCannotUnwrap() throws {
        let kek = Array(SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
        let wrapped = try sharedTestKey.publicKey.wrap(kek)
        #expect(wrapped.count == 256)
        #expect(try sharedTestKey.unwrap(wrapped) == kek)
        let other = try RSAPrivateKey.generate(bits: 2048)
        #expect(throws: RSAKeyError.self) { try other.unwrap(wrapped) }
        var tampered = wrapped
        tampered[100] ^= 1
        #expect(throws: RSAKeyError.self) { try sharedTestKey.unwrap(tampered) }
    }

    @Test func rs256SignaturesVerifyOnlyForTheirMessageAndKey() throws {
        let message = Array("header.payload".utf8)
        let signature = try sharedTestKey.signRS256(message)
        #expect(signature.count == 256)
        #expect(sharedTestKey.publicKey.verifyRS256(signature: signature, message: message))
        #expect(!sharedTestKey.publicKey.verifyRS256(signature: signature, message: Array("header.payloaD".utf8)))
        var flipped = signature
        flipped[0] ^= 0x80
        #expect(!sharedTestKey.publicKey.verifyRS256(signature: flipped, message: message))
        // PKCS#1 v1.5 is deterministic: the same input signs the same.
        #expect(try sharedTestKey.signRS256(message) == signature)
    }

    @Test func fingerprintIsSHA256OfTheSubjectPublicKeyInfo() throws {
        let key = sharedTestKey.publicKey
        #expect(key.fingerprint == Hex.encode(SHA256.hash(data: key.spkiDER)))
        #expect(key.fingerprint.count == 64)
        #expect(key.spkiDER.starts(with: [0x30, 0x82]))
    }

    /// RFC 7638 §3.1: the thumbprint of the RFC 7517 example key.
    @Test func jwkThumbprintMatchesRFC7638Example() throws {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        let key = try RSAPublicKey(modulus: try #require(Base64URL.decode(n)), exponent: [0x01, 0x00, 0x01])
        #expect(key.jwkThumbprint == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        #expect(key.jwk.n == n)
        #expect(key.jwk.e == "AQAB")
        #expect(key.jwk.kid == key.jwkThumbprint)
    }
}
