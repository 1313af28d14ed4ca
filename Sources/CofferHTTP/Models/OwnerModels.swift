import CofferCore
import Foundation
import Hummingbird

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
