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
