import CofferCore
import Foundation
import Hummingbird

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
