import Foundation

/// The protected header of a JWS, as Coffer writes and reads it.
public struct JWSHeader: Codable, Sendable, Equatable {
    public var alg: String
    public var typ: String?
    public var kid: String?

    public init(alg: String, typ: String? = "JWT", kid: String?) {
        self.alg = alg
        self.typ = typ
        self.kid = kid
    }
}

/// Why a compact JWS could not be read.
public struct JWSError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        case malformed
        case tooLarge
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func == (lhs: JWSError, rhs: JWSError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }
}

/// A compact JWS (`header.payload.signature`), split and decoded but not yet verified.
/// Writing one is two steps so the signature can come from anywhere (a local key, KMS):
/// ``signingInput(header:payload:)``, then ``serialize(signingInput:signature:)``.
public struct CompactJWS: Sendable {
    /// Tokens longer than this are refused before any decoding.
    public static let maximumLength = 16 * 1024

    public let header: JWSHeader
    /// The header's JSON as sent (to check its members, which decoding does not show).
    public let headerBytes: [UInt8]
    public let payload: [UInt8]
    public let signature: [UInt8]
    /// `base64url(header) "." base64url(payload)`: the bytes the signature covers.
    public let signingInput: [UInt8]

    /// Splits and decodes a compact JWS.
    /// - Throws: ``JWSError`` for anything but three base64url parts with a JSON header.
    public init(parsing token: some StringProtocol) throws {
        guard token.utf8.count <= Self.maximumLength else {
            throw JWSError(.tooLarge, "token is longer than \(Self.maximumLength) bytes")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw JWSError(.malformed, "token does not have three parts") }
        guard let headerBytes = Base64URL.decode(parts[0]),
              let payload = Base64URL.decode(parts[1]),
              let signature = Base64URL.decode(parts[2])
        else { throw JWSError(.malformed, "token part is not base64url") }
        do {
            self.header = try JSONDecoder().decode(JWSHeader.self, from: Data(headerBytes))
        } catch {
            throw JWSError(.malformed, "token header is not a JSON object with an alg")
        }
        self.headerBytes = headerBytes
        self.payload = payload
        self.signature = signature
        self.signingInput = Array(parts[0].utf8) + [UInt8(ascii: ".")] + Array(parts[1].utf8)
    }

    /// The bytes to sign for a header and payload.
    public static func signingInput(header: JWSHeader, payload: some DataProtocol) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let headerJSON = try encoder.encode(header)
        return Base64URL.encode(headerJSON) + "." + Base64URL.encode(payload)
    }

    /// The compact serialization of a signed token.
    public static func serialize(signingInput: String, signature: some DataProtocol) -> String {
        signingInput + "." + Base64URL.encode(signature)
    }
}
