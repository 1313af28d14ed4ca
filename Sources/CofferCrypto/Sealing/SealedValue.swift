import Crypto
import Foundation

/// The sealed format of every AES-256-GCM value Coffer stores, data keys included:
/// `format | key version (uint32 BE) | nonce (12) | ciphertext | tag (16)`.
///
/// The associated data is not stored: it is derived from where the value lives
/// (see ``AssociatedData``), so a value moved to another place does not open. The format
/// byte says which associated data: `0x01` for every value written before format 2, and
/// still for data keys and KMS key material; `0x02` for config values whose associated
/// data binds also their type, `write_only` and version
/// (``AssociatedData/configValue(_:format:)``).
public struct SealedValue: Sendable, Hashable {
    /// The first format: a config value is bound to its owner and config id.
    public static let formatV1: UInt8 = 0x01
    /// A config value is bound to its owner, config id, type, `write_only` and version.
    public static let formatV2: UInt8 = 0x02
    /// The format bytes this code reads.
    public static let knownFormats: Set<UInt8> = [formatV1, formatV2]
    /// Bytes before the ciphertext.
    public static let headerLength = 1 + 4 + 12
    /// Bytes of the GCM tag.
    public static let tagLength = 16
    /// Length of a sealed empty plaintext.
    public static let minimumLength = headerLength + tagLength

    /// The format byte (``formatV1`` or ``formatV2``): which associated data opens it.
    public var format: UInt8 { bytes[0] }
    /// Version of the key that sealed the value, read from the header.
    public let keyVersion: UInt32
    /// The whole sealed byte string, header included.
    public let bytes: [UInt8]

    /// Parses the header of a sealed byte string without opening it.
    /// - Throws: ``SealError`` when the bytes are too short or of an unknown format.
    public init(bytes: some Collection<UInt8>) throws {
        let bytes = [UInt8](bytes)
        guard bytes.count >= Self.minimumLength else { throw SealError.truncated(bytes.count) }
        guard Self.knownFormats.contains(bytes[0]) else {
            throw SealError(.unknownFormat, "unknown sealed format byte 0x\(Hex.encode([bytes[0]]))")
        }
        self.keyVersion = UInt32(bytes[1]) << 24 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 8 | UInt32(bytes[4])
        self.bytes = bytes
    }

    /// Seals a plaintext with a 256-bit key under a fresh random nonce.
    /// - Parameters:
    ///   - plaintext: the bytes to protect.
    ///   - key: an AES-256 key.
    ///   - keyVersion: the key's version, written to the header so the value names its key.
    ///   - associatedData: the value's place (``AssociatedData``), authenticated but not stored.
    ///   - format: the format byte, which names the kind of `associatedData` (the bytes are
    ///     the same layout in every format).
    public static func seal(
        _ plaintext: some DataProtocol,
        key: SymmetricKey,
        keyVersion: UInt32,
        associatedData: some DataProtocol,
        format: UInt8 = formatV1
    ) throws -> SealedValue {
        guard knownFormats.contains(format) else { throw SealError(.unknownFormat, "unknown sealed format byte 0x\(Hex.encode([format]))") }
        guard key.bitCount == 256 else { throw SealError(.invalidKey, "sealing needs a 256-bit key, got \(key.bitCount) bits") }
        let box = try AES.GCM.seal(plaintext, using: key, nonce: AES.GCM.Nonce(), authenticating: associatedData)
        var out = [UInt8]()
        out.reserveCapacity(headerLength + plaintext.count + tagLength)
        out.append(format)
        out.append(contentsOf: [UInt8(keyVersion >> 24), UInt8(keyVersion >> 16 & 0xff), UInt8(keyVersion >> 8 & 0xff), UInt8(keyVersion & 0xff)])
        out.append(contentsOf: box.nonce)
        out.append(contentsOf: box.ciphertext)
        out.append(contentsOf: box.tag)
        return try SealedValue(bytes: out)
    }

    /// Opens the value with the key of the version its header names.
    /// - Parameters:
    ///   - key: the key of version ``keyVersion``.
    ///   - version: the version of `key`; a mismatch with the header is refused before decrypting.
    ///   - associatedData: the associated data the value was sealed with.
    /// - Throws: ``SealError`` with `unknownKeyVersion` or `authenticationFailed`.
    public func open(key: SymmetricKey, version: UInt32, associatedData: some DataProtocol) throws -> [UInt8] {
        guard version == keyVersion else {
            throw SealError(.unknownKeyVersion, "value is sealed under key version \(keyVersion), not \(version)")
        }
        guard key.bitCount == 256 else { throw SealError(.invalidKey, "opening needs a 256-bit key, got \(key.bitCount) bits") }
        let nonceEnd = Self.headerLength
        let tagStart = bytes.count - Self.tagLength
        do {
            let box = try AES.GCM.SealedBox(
                nonce: AES.GCM.Nonce(data: bytes[5..<nonceEnd]),
                ciphertext: bytes[nonceEnd..<tagStart],
                tag: bytes[tagStart...]
            )
            return [UInt8](try AES.GCM.open(box, using: key, authenticating: associatedData))
        } catch {
            throw SealError(.authenticationFailed, "sealed value did not authenticate under key version \(keyVersion) (wrong key, wrong place, or altered bytes)")
        }
    }
}
