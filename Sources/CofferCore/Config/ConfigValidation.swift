import CofferCrypto
import Foundation

/// Input rules for stacks, contexts and config elements (CONTRACT §3).
public enum ConfigValidation {
    /// Largest environment variable value, bytes.
    public static let maximumVariableBytes = 256 * 1024
    /// Largest mounted file, bytes (decoded).
    public static let maximumFileBytes = 2 * 1024 * 1024

    /// Slugs: `^[a-z0-9][a-z0-9-]{0,62}$`.
    public static func checkSlug(_ id: String, what: String) throws {
        let bytes = Array(id.utf8)
        let valid = (1...63).contains(bytes.count)
            && bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7a) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2d }
            && bytes.first != 0x2d
        guard valid else {
            throw CofferError.invalidID("\(what) must be 1 to 63 characters of a-z, 0-9 and '-', not starting with '-'")
        }
    }

    /// Variable names: `^[A-Za-z_][A-Za-z0-9_]*$`, at most 255 characters.
    public static func checkVariableName(_ name: String) throws {
        let bytes = Array(name.utf8)
        func isLetter(_ b: UInt8) -> Bool { (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b == 0x5f }
        guard let first = bytes.first, isLetter(first), bytes.count <= 255,
              bytes.allSatisfy({ isLetter($0) || ($0 >= 0x30 && $0 <= 0x39) })
        else {
            throw CofferError.invalidConfigID("an environment variable name must match ^[A-Za-z_][A-Za-z0-9_]*$")
        }
    }

    /// File paths: relative, no `..` or empty segments, no control characters, at most 1024 bytes.
    public static func checkFilePath(_ path: String) throws {
        let segments = path.split(separator: "/", omittingEmptySubsequences: false)
        let valid = !path.isEmpty && path.utf8.count <= 1024 && !path.hasPrefix("/")
            && !segments.contains(where: { $0.isEmpty || $0 == ".." || $0 == "." })
            && !path.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f || $0 == "\\" })
        guard valid else {
            throw CofferError.invalidConfigID("a file path must be relative, without '..', '.', empty segments, backslashes or control characters")
        }
    }

    /// The plaintext bytes to seal for an element, checked against the limits.
    public static func plaintext(of input: ConfigElementInput, configID: String) throws -> [UInt8] {
        switch input.type {
        case .environmentVariable:
            try checkVariableName(configID)
            let bytes = Array(input.value.utf8)
            guard bytes.count <= maximumVariableBytes else {
                throw CofferError.tooLarge("an environment variable value may be at most 256 KiB")
            }
            // A process environment cannot carry NUL: a runner could not export the value.
            guard !bytes.contains(0) else {
                throw CofferError.invalidValue("an environment variable value cannot contain NUL; store binary data as a FILE_MOUNT")
            }
            return bytes
        case .fileMount:
            try checkFilePath(configID)
            guard let data = Data(base64Encoded: input.value) else {
                throw CofferError.invalidValue("a FILE_MOUNT value must be base64")
            }
            guard data.count <= maximumFileBytes else {
                throw CofferError.tooLarge("a mounted file may be at most 2 MiB")
            }
            return [UInt8](data)
        }
    }

    /// A display name: 1 to 200 characters once trimmed, no control characters. Returns it trimmed.
    public static func checkName(_ name: String, what: String) throws -> String {
        let trimmed = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty, trimmed.count <= 200, !trimmed.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw CofferError.invalidName("\(what) needs a name of 1 to 200 characters without control characters")
        }
        return trimmed
    }

    /// Descriptions: at most 10,000 characters, no NUL.
    public static func checkDescription(_ description: String) throws {
        guard description.count <= 10_000, !description.unicodeScalars.contains("\u{0}") else {
            throw CofferError.invalidDescription("a description may be at most 10,000 characters, without NUL")
        }
    }

    /// Labels: 1 to 255 characters without control or invisible formatting characters
    /// (bidirectional overrides, zero-width characters): labels decide auto-attachment, so
    /// two labels that look alike must be alike. At most 100 of them.
    public static func checkLabels(_ labels: [String]) throws {
        func visible(_ scalar: Unicode.Scalar) -> Bool {
            scalar.value >= 0x20 && scalar.value != 0x7f && !(0x80...0x9f).contains(scalar.value) && scalar.properties.generalCategory != .format
        }
        guard labels.count <= 100,
              labels.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 255 && $0.unicodeScalars.allSatisfy(visible) })
        else {
            throw CofferError.invalidLabels("labels must be at most 100 non-empty strings of at most 255 characters, without control or invisible formatting characters")
        }
    }
}
