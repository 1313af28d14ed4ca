import CofferCore
import Foundation
import Hummingbird

/// `PUT …/config/{configId}` body.
struct ConfigElementRequest: StrictRequestBody {
    let type: ConfigElementType
    let value: String
    let writeOnly: Bool?
    let description: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, value, description
        case writeOnly = "write_only"
    }
}

struct ConfigElementResponse: ResponseEncodable {
    let id: String
    let type: ConfigElementType
    let value: String?
    let writeOnly: Bool
    let checksum: String
    let description: String
    let version: Int
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, type, value, checksum, description, version
        case writeOnly = "write_only"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ view: ConfigElementView) {
        self.id = view.id
        self.type = view.type
        self.value = view.value
        self.writeOnly = view.writeOnly
        self.checksum = view.checksum
        self.description = view.description
        self.version = view.version
        self.createdAt = view.createdAt
        self.updatedAt = view.updatedAt
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(type, forKey: .type)
        try container.encode(value, forKey: .value)  // explicit null for write-only elements
        try container.encode(writeOnly, forKey: .writeOnly)
        try container.encode(checksum, forKey: .checksum)
        try container.encode(description, forKey: .description)
        try container.encode(version, forKey: .version)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

/// One version of a config element.
struct ConfigVersionResponse: Encodable, Sendable {
    let version: Int
    let type: ConfigElementType
    let value: String?
    let writeOnly: Bool
    let checksum: String
    let description: String
    let author: String
    let createdAt: Date

    enum CodingKeys: String, CodingKey {
        case version, type, value, checksum, description, author
        case writeOnly = "write_only"
        case createdAt = "created_at"
    }

    init(_ view: ConfigVersionView) {
        self.version = view.version
        self.type = view.type
        self.value = view.value
        self.writeOnly = view.writeOnly
        self.checksum = view.checksum
        self.description = view.description
        self.author = view.author
        self.createdAt = view.createdAt
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(version, forKey: .version)
        try container.encode(type, forKey: .type)
        try container.encode(value, forKey: .value)  // explicit null for write-only versions
        try container.encode(writeOnly, forKey: .writeOnly)
        try container.encode(checksum, forKey: .checksum)
        try container.encode(description, forKey: .description)
        try container.encode(author, forKey: .author)
        try container.encode(createdAt, forKey: .createdAt)
    }
}
