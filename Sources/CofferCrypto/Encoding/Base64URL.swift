import Foundation

/// Unpadded base64url (RFC 4648 §5), as JWS and JWK use it.
public enum Base64URL {
    /// Encodes bytes without padding.
    public static func encode(_ bytes: some DataProtocol) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes unpadded base64url; returns `nil` for any character outside the alphabet,
    /// for padding, for a length that no encoding produces, and for a last character
    /// whose unused low bits are not zero: every byte string has exactly one accepted
    /// encoding, so a token cannot be altered and still verify.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        let remainder = text.utf8.count % 4
        guard remainder != 1 else { return nil }
        var standard = ""
        standard.reserveCapacity(text.utf8.count + 3)
        var lastValue: UInt8 = 0
        for scalar in text.unicodeScalars {
            switch scalar {
            case "A"..."Z": lastValue = UInt8(scalar.value - 65)
            case "a"..."z": lastValue = UInt8(scalar.value - 97 + 26)
            case "0"..."9": lastValue = UInt8(scalar.value - 48 + 52)
            case "-": lastValue = 62
            case "_": lastValue = 63
            default: return nil
            }
            switch scalar {
            case "-": standard.append("+")
            case "_": standard.append("/")
            default: standard.unicodeScalars.append(scalar)
            }
        }
        // Two characters carry 12 bits for one byte, three carry 18 for two.
        if remainder == 2, lastValue & 0x0f != 0 { return nil }
        if remainder == 3, lastValue & 0x03 != 0 { return nil }
        while standard.utf8.count % 4 != 0 { standard.append("=") }
        guard let data = Data(base64Encoded: standard) else { return nil }
        return [UInt8](data)
    }
}

/// Lowercase hexadecimal, as fingerprints and checksums are written.
public enum Hex {
    /// Encodes bytes as lowercase hex.
    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
