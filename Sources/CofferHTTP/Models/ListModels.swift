import CofferCore
import Foundation
import Hummingbird

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
