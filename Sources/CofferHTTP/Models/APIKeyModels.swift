import CofferCore
import Foundation
import Hummingbird

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
