import Foundation

/// The associated data that binds each sealed value to its place (CONTRACT §4).
/// Part of the storage format: changing a string here strands every stored value.
public enum AssociatedData {
    /// A data-encryption key sealed under the key-encryption key:
    /// `coffer/dek/<purpose>/<dek version>`.
    public static func dataKey(purpose: String, version: UInt32) -> [UInt8] {
        Array("coffer/dek/\(purpose)/\(version)".utf8)
    }

    /// A config element's value in sealed format 1: `coffer/config/<owner uuid>/<configId>`,
    /// with the UUID in lowercase as PostgreSQL prints it. Values of this format are read
    /// until `coffer keys reseal` has sealed them again in format 2.
    public static func configValue(ownerID: UUID, configID: String) -> [UInt8] {
        Array("coffer/config/\(ownerID.uuidString.lowercased())/\(configID)".utf8)
    }

    /// A config value (current or a history version) in the format its sealed bytes name:
    /// format 2 binds what decides its disclosure and its place,
    /// `coffer/config/v2/<owner uuid>/<type>/<write_only 0|1>/<version>/<configId>`, so a
    /// value whose `write_only` was flipped, or that was copied from another version or
    /// element, does not open. The config id comes last: every other field has a fixed
    /// grammar, so the string reads back unambiguously.
    public static func configValue(_ place: ConfigValuePlace, format: UInt8) -> [UInt8] {
        guard format != SealedValue.formatV1 else { return configValue(ownerID: place.ownerID, configID: place.configID) }
        let owner = place.ownerID.uuidString.lowercased()
        return Array("coffer/config/v2/\(owner)/\(place.type)/\(place.writeOnly ? 1 : 0)/\(place.version)/\(place.configID)".utf8)
    }

    /// A version of a named KMS key's material, sealed under the key-encryption key:
    /// `coffer/kms-key/<key uuid>/<version>`.
    public static func kmsKey(keyID: UUID, version: UInt32) -> [UInt8] {
        Array("coffer/kms-key/\(keyID.uuidString.lowercased())/\(version)".utf8)
    }

    /// A ciphertext of the KMS API: `coffer/kms/<key uuid>/<version>/` followed by the
    /// caller's context bytes (none when it gave no context). The uuid and version have
    /// fixed grammars, so the prefix ends unambiguously and the context is bound whole.
    public static func kmsCiphertext(keyID: UUID, version: UInt32, context: [UInt8]) -> [UInt8] {
        Array("coffer/kms/\(keyID.uuidString.lowercased())/\(version)/".utf8) + context
    }
}

/// Where a config value lives and what decides who sees it: the fields format 2 binds.
public struct ConfigValuePlace: Sendable, Hashable {
    public var ownerID: UUID
    public var configID: String
    /// `ENVIRONMENT_VARIABLE` or `FILE_MOUNT`.
    public var type: String
    public var writeOnly: Bool
    /// The element version the value was written as (a current value and its history row
    /// carry the same).
    public var version: Int32

    public init(ownerID: UUID, configID: String, type: String, writeOnly: Bool, version: Int32) {
        self.ownerID = ownerID
        self.configID = configID
        self.type = type
        self.writeOnly = writeOnly
        self.version = version
    }
}
