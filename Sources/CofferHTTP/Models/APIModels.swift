import CofferCore
import Foundation
import Hummingbird

/// `POST /api/v1/auth/token` body.
struct TokenRequest: StrictRequestBody {
    let apiKeyID: String
    let apiKeySecret: String

    enum CodingKeys: String, CodingKey, CaseIterable {
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
struct OwnerCreateRequest: StrictRequestBody {
    let id: String
    let name: String
    let space: String?
    let labels: [String]?
    let description: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, space, labels, description
    }
}

/// `PATCH /api/v1/stacks/{id}` and `/contexts/{id}` body: every field optional.
struct OwnerPatchRequest: StrictRequestBody {
    let name: String?
    let space: String?
    let labels: [String]?
    let description: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, space, labels, description
    }
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

/// `PUT /api/v1/stacks/{id}/contexts/{contextId}` body.
struct AttachRequest: StrictRequestBody {
    let priority: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case priority
    }
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

    init(_ item: RuntimeConfigItem) {
        self.init(id: item.id, type: item.type, value: item.value, writeOnly: item.writeOnly, source: item.source)
    }

    init(id: String, type: ConfigElementType, value: String, writeOnly: Bool, source: String) {
        self.id = id
        self.type = type
        self.value = value
        self.writeOnly = writeOnly
        self.source = source
    }

    /// The route's answer for these items.
    static func body(_ items: [RuntimeConfigItem]) -> ItemsResponse<RuntimeConfigItemResponse> {
        ItemsResponse(items: items.map(RuntimeConfigItemResponse.init))
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

/// `POST /api/v1/spaces` body.
struct SpaceCreateRequest: StrictRequestBody {
    let id: String
    let name: String
    let parent: String?
    let description: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, parent, description
    }
}

/// `PATCH /api/v1/spaces/{id}` body.
struct SpacePatchRequest: StrictRequestBody {
    let name: String?
    let parent: String?
    let description: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, parent, description
    }
}

struct SpaceResponse: ResponseEncodable {
    let id: String
    let name: String
    let parent: String?
    let description: String
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case id, name, parent, description
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ record: SpaceRecord) {
        self.id = record.id
        self.name = record.name
        self.parent = record.parent
        self.description = record.description
        self.createdAt = record.createdAt
        self.updatedAt = record.updatedAt
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(parent, forKey: .parent)  // explicit null for root
        try container.encode(description, forKey: .description)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
    }
}

/// `POST /api/v1/api-keys` body.
struct APIKeyCreateRequest: StrictRequestBody {
    let name: String
    let space: String?
    let role: Role

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, space, role
    }
}

/// An API key as listed: never its secret.
struct APIKeyResponse: ResponseEncodable {
    let id: String
    let name: String
    let space: String
    let role: String
    let createdAt: Date
    let revokedAt: Date?
    /// Only in the answer to `POST`: shown once, stored nowhere.
    let secret: String?

    enum CodingKeys: String, CodingKey {
        case id, name, space, role, secret
        case createdAt = "created_at"
        case revokedAt = "revoked_at"
    }

    init(_ record: APIKeyRecord, secret: String? = nil) {
        self.id = record.id
        self.name = record.name
        self.space = record.space
        self.role = record.role
        self.createdAt = record.createdAt
        self.revokedAt = record.revokedAt
        self.secret = secret
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(name, forKey: .name)
        try container.encode(space, forKey: .space)
        try container.encode(role, forKey: .role)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(revokedAt, forKey: .revokedAt)
        if let secret { try container.encode(secret, forKey: .secret) }
    }
}

struct AuditEventResponse: Encodable, Sendable {
    let id: String
    let occurredAt: Date
    let actor: String
    let actorSpace: String?
    let action: String
    let resource: String
    let space: String?
    let requestID: String
    let outcome: String
    let detail: String

    enum CodingKeys: String, CodingKey {
        case id, actor, action, resource, space, outcome, detail
        case occurredAt = "occurred_at"
        case actorSpace = "actor_space"
        case requestID = "request_id"
    }

    init(_ record: AuditRecord) {
        self.id = String(record.id)
        self.occurredAt = record.occurredAt
        self.actor = record.actor
        self.actorSpace = record.actorSpace
        self.action = record.action
        self.resource = record.resource
        self.space = record.space
        self.requestID = record.requestID
        self.outcome = record.outcome.rawValue
        self.detail = record.detail
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(occurredAt, forKey: .occurredAt)
        try container.encode(actor, forKey: .actor)
        try container.encode(actorSpace, forKey: .actorSpace)
        try container.encode(action, forKey: .action)
        try container.encode(resource, forKey: .resource)
        try container.encode(space, forKey: .space)
        try container.encode(requestID, forKey: .requestID)
        try container.encode(outcome, forKey: .outcome)
        try container.encode(detail, forKey: .detail)
    }
}

/// The body of `GET /api/v1/stacks/{id}/runtime-config` exactly as the route encodes it,
/// for the micro-benchmarks.
public enum RuntimeConfigJSON {
    public static func encode(_ items: [RuntimeConfigItem]) throws -> Data {
        try JSONEncoder().encode(RuntimeConfigItemResponse.body(items))
    }
}
