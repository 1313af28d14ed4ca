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
