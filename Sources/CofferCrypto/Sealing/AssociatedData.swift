import Foundation

/// The associated data that binds each sealed value to its place (CONTRACT §4).
/// Part of the storage format: changing a string here strands every stored value.
public enum AssociatedData {
    /// A data-encryption key sealed under the key-encryption key:
    /// `coffer/dek/<purpose>/<dek version>`.
    public static func dataKey(purpose: String, version: UInt32) -> [UInt8] {
        Array("coffer/dek/\(purpose)/\(version)".utf8)
    }

    /// A config element's value: `coffer/config/<owner uuid>/<configId>`, with the
    /// UUID in lowercase as PostgreSQL prints it.
    public static func configValue(ownerID: UUID, configID: String) -> [UInt8] {
        Array("coffer/config/\(ownerID.uuidString.lowercased())/\(configID)".utf8)
    }
}
