import CofferCore
import Foundation
import Hummingbird

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
