import CofferStore
import Foundation

/// The kind of a config element (CONTRACT §3).
public enum ConfigElementType: String, Sendable, Codable, CaseIterable {
    case environmentVariable = "ENVIRONMENT_VARIABLE"
    case fileMount = "FILE_MOUNT"
}

extension ConfigElementType {
    /// The type of a stored element or version; a type this build does not know is an
    /// error that names the element, never a default.
    static func of(_ row: ConfigElementRecord) throws -> ConfigElementType {
        try .stored(row.type, in: "config element `\(row.configID)` of owner \(row.ownerID) (version \(row.version))")
    }

    /// The type of a resolved runtime config element.
    static func of(_ row: RuntimeConfigRow) throws -> ConfigElementType {
        try .stored(row.type, in: "config element `\(row.configID)` of owner \(row.ownerID)")
    }
}

/// What a caller sends to create a stack or context.
public struct OwnerInput: Sendable {
    public var id: String
    public var name: String
    public var space: String
    public var labels: [String]
    public var description: String

    public init(id: String, name: String, space: String, labels: [String], description: String) {
        self.id = id
        self.name = name
        self.space = space
        self.labels = labels
        self.description = description
    }
}

/// A change to a stack or context; nil fields stay as they are.
public struct OwnerPatch: Sendable {
    public var name: String?
    public var space: String?
    public var labels: [String]?
    public var description: String?

    public init(name: String? = nil, space: String? = nil, labels: [String]? = nil, description: String? = nil) {
        self.name = name
        self.space = space
        self.labels = labels
        self.description = description
    }
}

/// What a caller sends to set a config element. A file's value is base64.
public struct ConfigElementInput: Sendable {
    public var type: ConfigElementType
    public var value: String
    public var writeOnly: Bool
    public var description: String

    public init(type: ConfigElementType, value: String, writeOnly: Bool, description: String) {
        self.type = type
        self.value = value
        self.writeOnly = writeOnly
        self.description = description
    }
}

/// A config element as listed: a write-only element's value is nil, its checksum shown.
public struct ConfigElementView: Sendable, Equatable {
    public var id: String
    public var type: ConfigElementType
    public var value: String?
    public var writeOnly: Bool
    public var checksum: String
    public var description: String
    /// The current version number (1 for a new element).
    public var version: Int
    public var createdAt: Date
    public var updatedAt: Date
}

/// One version in an element's history.
public struct ConfigVersionView: Sendable, Equatable {
    public var version: Int
    public var type: ConfigElementType
    /// Nil when this version was write-only.
    public var value: String?
    public var writeOnly: Bool
    public var checksum: String
    public var description: String
    /// The API key id (or `cli`) that wrote it.
    public var author: String
    public var createdAt: Date
}

/// One resolved element of a stack's runtime config, decrypted.
public struct RuntimeConfigItem: Sendable, Equatable {
    public var id: String
    public var type: ConfigElementType
    public var value: String
    public var writeOnly: Bool
    /// `stack` or `context:<id>`.
    public var source: String

    public init(id: String, type: ConfigElementType, value: String, writeOnly: Bool, source: String) {
        self.id = id
        self.type = type
        self.value = value
        self.writeOnly = writeOnly
        self.source = source
    }
}
