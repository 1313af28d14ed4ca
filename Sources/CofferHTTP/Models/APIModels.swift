import CofferCore
import CofferStore
import Foundation
import Hummingbird

/// `POST /api/v1/auth/token` body.
struct TokenRequest: Decodable {
    let apiKeyID: String
    let apiKeySecret: String

    enum CodingKeys: String, CodingKey {
        case apiKeyID = "api_key_id"
        case apiKeySecret = "api_key_secret"
    }
}

struct TokenResponse: ResponseEncodable {
    let token: String
    let expiresAt: Date

    enum CodingKeys: String, CodingKey {
        case token
        case expiresAt = "expires_at"
    }
}

/// `POST /api/v1/stacks` and `/contexts` body.
struct OwnerCreateRequest: Decodable {
    let id: String
    let name: String
    let space: String?
    let labels: [String]?
    let description: String?
}

/// A stack or context as the API shows it.
struct OwnerResponse: ResponseEncodable {
    let id: String
    let name: String
    let space: String
    let labels: [String]
    let description: String
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, space, labels, description
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ record: OwnerRecord) {
        self.id = record.id
        self.name = record.name
        self.space = record.space
        self.labels = record.labels
        self.description = record.description
        self.createdAt = record.createdAt
        self.updatedAt = record.updatedAt
    }
}

/// `PUT …/config/{configId}` body.
struct ConfigElementRequest: Decodable {
    let type: ConfigElementType
    let value: String
    let writeOnly: Bool?
    let description: String?

    enum CodingKeys: String, CodingKey {
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
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, type, value, checksum, description
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
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

/// `PUT /api/v1/stacks/{id}/contexts/{contextId}` body.
struct AttachRequest: Decodable {
    let priority: Int
}

struct AttachResponse: ResponseEncodable {
    let stack: String
    let context: String
    let priority: Int
}

struct RuntimeConfigItemResponse: Encodable {
    let id: String
    let type: ConfigElementType
    let value: String
    let writeOnly: Bool
    let source: String

    enum CodingKeys: String, CodingKey {
        case id, type, value, source
        case writeOnly = "write_only"
    }
}

/// `{"items": [...], "next_cursor": ... | null}`: every list route's answer.
struct ListResponse<Item: Encodable & Sendable>: ResponseEncodable {
    let items: [Item]
    let nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(items, forKey: .items)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}

/// `{"items": [...]}` for answers that are not paginated.
struct ItemsResponse<Item: Encodable & Sendable>: ResponseEncodable {
    let items: [Item]
}

