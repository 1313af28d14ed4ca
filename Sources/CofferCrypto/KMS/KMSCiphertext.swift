import Crypto
import Foundation

/// A ciphertext of Coffer's KMS API as applications hold it: `coffer:v<version>:<base64>`,
/// where `<version>` is the key version that sealed it (decimal, no leading zero) and
/// `<base64>` is the standard, padded base64 of `nonce (12) | ciphertext | tag (16)`
/// (AES-GCM). Parsing accepts only the canonical text of a byte string, so no two texts
/// name one ciphertext and no edit of the text goes unnoticed.
public struct KMSCiphertext: Sendable, Hashable {
    public static let prefix = "coffer:v"
    static let nonceLength = 12
    static let tagLength = 16

    /// The key version that sealed it, read from the text.
    public let version: UInt32
    /// `nonce | ciphertext | tag`.
    public let payload: [UInt8]

    /// The text form.
    public var text: String {
        "\(Self.prefix)\(version):\(Data(payload).base64EncodedString())"
    }

    /// Parses the text form; nil when it is not one this format produces.
    public init?(parsing text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        let prefix = Array(Self.prefix.utf8)
        guard utf8.count > prefix.count, utf8.starts(with: prefix) else { return nil }
        var index = prefix.count
        var version: UInt64 = 0
        let digitsStart = index
        while index < utf8.count, (0x30...0x39).contains(utf8[index]) {
            version = version * 10 + UInt64(utf8[index] - 0x30)
            guard version <= UInt64(UInt32.max) else { return nil }
            index += 1
        }
        let digits = index - digitsStart
        guard digits > 0, utf8[digitsStart] != 0x30 || digits == 1, version > 0 else { return nil }
        guard index < utf8.count, utf8[index] == UInt8(ascii: ":") else { return nil }
        let encoded = String(decoding: utf8[(index + 1)...], as: UTF8.self)
        guard let data = Data(base64Encoded: encoded), data.base64EncodedString() == encoded,
              data.count >= Self.nonceLength + Self.tagLength
        else { return nil }
        self.version = UInt32(version)
        self.payload = [UInt8](data)
    }

    init(version: UInt32, payload: [UInt8]) {
        self.version = version
        self.payload = payload
    }

    /// Seals a plaintext under a fresh random nonce with a 128- or 256-bit key.
    public static func seal(_ plaintext: some DataProtocol, key: SymmetricKey, version: UInt32, associatedData: some DataProtocol) throws -> KMSCiphertext {
        guard key.bitCount == 256 || key.bitCount == 128 else {
            throw SealError(.invalidKey, "a KMS key has 128 or 256 bits, not \(key.bitCount)")
        }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(), authenticating: associatedData)
        var payload = [UInt8]()
        payload.reserveCapacity(nonceLength + plaintext.count + tagLength)
        payload.append(contentsOf: box.nonce)
        payload.append(contentsOf: box.ciphertext)
        payload.append(contentsOf: box.tag)
        return KMSCiphertext(version: version, payload: payload)
    }

    /// Opens with the key of ``version``.
    /// - Throws: ``SealError`` with `authenticationFailed` for another key, another
    ///   associated data or altered bytes.
    public func open(key: SymmetricKey, associatedData: some DataProtocol) throws -> [UInt8] {
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: payload[0..<Self.nonceLength]),
                ciphertext: payload[Self.nonceLength..<(payload.count - Self.tagLength)],
                tag: payload[(payload.count - Self.tagLength)...]
            )
            return [UInt8](try AES.GCM.open(box, using: key, authenticating: associatedData))
        } catch {
            throw SealError(.authenticationFailed, "the ciphertext did not authenticate under key version \(version)")
        }
    }
}
