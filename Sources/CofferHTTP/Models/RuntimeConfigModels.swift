import CofferCore
import Foundation
import Hummingbird

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

/// The body of `GET /api/v1/stacks/{id}/runtime-config` exactly as the route encodes it,
/// for the micro-benchmarks.
public enum RuntimeConfigJSON {
    public static func encode(_ items: [RuntimeConfigItem]) throws -> Data {
        try JSONEncoder().encode(RuntimeConfigItemResponse.body(items))
    }
}
