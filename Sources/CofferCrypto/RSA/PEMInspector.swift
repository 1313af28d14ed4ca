import Foundation

/// Reads just enough of a PEM to say precisely what is wrong with it, before the
/// RSA parser gives its one generic failure.
enum PEMInspector {
    /// DER of the rsaEncryption OID 1.2.840.113549.1.1.1.
    private static let rsaEncryptionOID: [UInt8] = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]

    /// The label of the first PEM block if it is an unencrypted RSA private key.
    static func privateKeyLabel(of pem: String) throws -> String {
        guard let begin = pem.range(of: "-----BEGIN "),
              let labelEnd = pem.range(of: "-----", range: begin.upperBound..<pem.endIndex)
        else {
            throw RSAKeyError(.notPEM, "the decoded value is not a PEM; expected `-----BEGIN PRIVATE KEY-----` or `-----BEGIN RSA PRIVATE KEY-----`")
        }
        let label = String(pem[begin.upperBound..<labelEnd.lowerBound])
        switch label {
        case "ENCRYPTED PRIVATE KEY":
            throw RSAKeyError(.encryptedPEM, "the PEM is encrypted with a passphrase; decrypt it with `openssl pkey -in key.pem -out plain.pem`")
        case "RSA PRIVATE KEY":
            if pem.contains("Proc-Type: 4,ENCRYPTED") {
                throw RSAKeyError(.encryptedPEM, "the PEM is encrypted with a passphrase; decrypt it with `openssl pkey -in key.pem -out plain.pem`")
            }
            return label
        case "PRIVATE KEY":
            if let der = derBody(of: pem), !der.prefix(32).containsSequence(rsaEncryptionOID) {
                throw RSAKeyError(.notRSA, "the PKCS#8 key is not an RSA key (EC and Ed25519 keys cannot wrap keys); generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096`")
            }
            return label
        case "EC PRIVATE KEY", "DSA PRIVATE KEY", "OPENSSH PRIVATE KEY":
            throw RSAKeyError(.notRSA, "the PEM holds an \(label), not an RSA key; generate one with `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096`")
        case "PUBLIC KEY", "RSA PUBLIC KEY", "CERTIFICATE":
            throw RSAKeyError(.notRSA, "the PEM holds a \(label.lowercased()), not a private key")
        default:
            throw RSAKeyError(.notPEM, "the PEM block is `\(label)`; expected `PRIVATE KEY` or `RSA PRIVATE KEY`")
        }
    }

    /// The modulus size of a PKCS#1 or PKCS#8 RSA key read from its DER, for keys the
    /// RSA parser refuses as too small.
    static func rsaModulusBits(pem: String) -> Int? {
        guard let der = derBody(of: pem) else { return nil }
        return modulusBits(der: der[...])
    }

    private static func modulusBits(der: ArraySlice<UInt8>) -> Int? {
        // PKCS#1: SEQUENCE { INTEGER version, INTEGER n, ... }
        // PKCS#8: SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING pkcs1 }
        guard let outer = readTLV(der, at: der.startIndex), outer.tag == 0x30,
              let version = readTLV(der, at: outer.content.lowerBound), version.tag == 0x02,
              let second = readTLV(der, at: version.next)
        else { return nil }
        switch second.tag {
        case 0x02:
            let modulus = der[second.content].drop(while: { $0 == 0 })
            guard let first = modulus.first else { return nil }
            return (modulus.count - 1) * 8 + (8 - first.leadingZeroBitCount)
        case 0x30:
            guard let octets = readTLV(der, at: second.next), octets.tag == 0x04 else { return nil }
            return modulusBits(der: der[octets.content])
        default:
            return nil
        }
    }

    private static func readTLV(_ der: ArraySlice<UInt8>, at index: Int) -> (tag: UInt8, content: Range<Int>, next: Int)? {
        guard index + 1 < der.endIndex else { return nil }
        let tag = der[index]
        var length = Int(der[index + 1])
        var start = index + 2
        if length & 0x80 != 0 {
            let count = length & 0x7f
            guard count >= 1, count <= 3, start + count <= der.endIndex else { return nil }
            length = der[start..<start + count].reduce(0) { $0 << 8 | Int($1) }
            start += count
        }
        guard start + length <= der.endIndex else { return nil }
        return (tag, start..<start + length, start + length)
    }

    private static func derBody(of pem: String) -> [UInt8]? {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let body = lines.filter { !$0.hasPrefix("-----") && !$0.contains(":") }.joined()
        return Data(base64Encoded: body).map { [UInt8]($0) }
    }
}

private extension Collection where Element == UInt8 {
    func containsSequence(_ needle: [UInt8]) -> Bool {
        let haystack = Array(self)
        guard haystack.count >= needle.count else { return false }
        for start in 0...(haystack.count - needle.count) where Array(haystack[start..<start + needle.count]) == needle {
            return true
        }
        return false
    }
}
