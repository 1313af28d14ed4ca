/// The member names of a flat JSON object (RFC 8259): an object whose values are strings,
/// numbers, `true`, `false` or `null`, as every JWS header and claims set Coffer issues is.
/// JSON parsers keep the last of two members with one name, so a token `{"role":"read",
/// "role":"admin"}` reads differently in different verifiers (RFC 7515 §5.2 and RFC 7519
/// §4 require refusing it); names are compared after their escapes are decoded, so
/// `"r\u006fle"` is `role`.
public enum FlatJSONObject {
    public struct Refusal: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Every member name, in order.
    /// - Throws: ``Refusal`` for anything but one flat object: a duplicate name, a nested
    ///   object or array, bad JSON, trailing bytes.
    public static func memberNames(_ bytes: [UInt8]) throws -> [String] {
        var reader = Reader(bytes: bytes)
        var names: [String] = []
        var seen: Set<String> = []
        reader.skipSpace()
        try reader.expect(UInt8(ascii: "{"))
        reader.skipSpace()
        if reader.peek == UInt8(ascii: "}") {
            reader.index += 1
        } else {
            while true {
                reader.skipSpace()
                let name = try reader.string()
                guard seen.insert(name).inserted else { throw Refusal(description: "a member name appears twice") }
                names.append(name)
                reader.skipSpace()
                try reader.expect(UInt8(ascii: ":"))
                reader.skipSpace()
                try reader.scalarValue()
                reader.skipSpace()
                if reader.peek == UInt8(ascii: ",") { reader.index += 1; continue }
                try reader.expect(UInt8(ascii: "}"))
                break
            }
        }
        reader.skipSpace()
        guard reader.index == bytes.count else { throw Refusal(description: "bytes follow the object") }
        return names
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        var peek: UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpace() {
            while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D { index += 1 }
        }

        mutating func expect(_ byte: UInt8) throws {
            guard peek == byte else { throw Refusal(description: "not a flat JSON object") }
            index += 1
        }

        /// A string, its escapes decoded.
        mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var scalars = String.UnicodeScalarView()
            var raw: [UInt8] = []
            func flushRaw() throws {
                guard !raw.isEmpty else { return }
                guard let text = String(validating: raw, as: UTF8.self) else { throw Refusal(description: "a string is not UTF-8") }
                scalars.append(contentsOf: text.unicodeScalars)
                raw.removeAll()
            }
            while true {
                guard let byte = peek else { throw Refusal(description: "a string does not end") }
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    try flushRaw()
                    return String(scalars)
                case UInt8(ascii: "\\"):
                    try flushRaw()
                    scalars.append(try escape())
                case 0..<0x20:
                    throw Refusal(description: "a string holds a control character")
                default:
                    raw.append(byte)
                }
            }
        }

        private mutating func escape() throws -> Unicode.Scalar {
            guard let byte = peek else { throw Refusal(description: "an escape does not end") }
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return "\""
            case UInt8(ascii: "\\"): return "\\"
            case UInt8(ascii: "/"): return "/"
            case UInt8(ascii: "b"): return "\u{08}"
            case UInt8(ascii: "f"): return "\u{0C}"
            case UInt8(ascii: "n"): return "\n"
            case UInt8(ascii: "r"): return "\r"
            case UInt8(ascii: "t"): return "\t"
            case UInt8(ascii: "u"):
                let high = try hex4()
                if (0xD800..<0xDC00).contains(high) {
                    guard peek == UInt8(ascii: "\\") else { throw Refusal(description: "a lone surrogate") }
                    index += 1
                    try expect(UInt8(ascii: "u"))
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low),
                          let scalar = Unicode.Scalar(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                    else { throw Refusal(description: "a lone surrogate") }
                    return scalar
                }
                guard let scalar = Unicode.Scalar(high) else { throw Refusal(description: "a lone surrogate") }
                return scalar
            default:
                throw Refusal(description: "an unknown escape")
            }
        }

        private mutating func hex4() throws -> UInt32 {
            guard index + 4 <= bytes.count else { throw Refusal(description: "a \\u escape is short") }
            var value: UInt32 = 0
            for byte in bytes[index..<(index + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw Refusal(description: "a \\u escape is not hex")
                }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }

        /// A string, number, `true`, `false` or `null`; an object or array is refused.
        mutating func scalarValue() throws {
            guard let byte = peek else { throw Refusal(description: "a member has no value") }
            switch byte {
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "t"): try literal("true")
            case UInt8(ascii: "f"): try literal("false")
            case UInt8(ascii: "n"): try literal("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                while let next = peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(next)
                    || next == UInt8(ascii: "-") || next == UInt8(ascii: "+") || next == UInt8(ascii: ".")
                    || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
                    index += 1
                }
                guard index > start else { throw Refusal(description: "a number is empty") }
            default:
                throw Refusal(description: "a member's value is an object, an array or not JSON")
            }
        }

        private mutating func literal(_ word: String) throws {
            let expected = Array(word.utf8)
            guard index + expected.count <= bytes.count, Array(bytes[index..<(index + expected.count)]) == expected else {
                throw Refusal(description: "not JSON")
            }
            index += expected.count
        }
    }
}
