import CofferCore
import Foundation
import Hummingbird

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
