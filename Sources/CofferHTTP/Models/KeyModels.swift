import CofferCore
import Foundation
import Hummingbird

struct RotateRequest: StrictRequestBody {
    let rewrap: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case rewrap
    }
}

struct KeyVersionResponse: Encodable, Sendable {
    let id: String
    let purpose: String
    let version: Int
    let state: String
    let createdAt: Date
    let kekVersion: Int?
    let values: Int64?
    let root: String?

    enum CodingKeys: String, CodingKey {
        case id, purpose, version, state, values, root
        case createdAt = "created_at"
        case kekVersion = "kek_version"
    }

    init(_ view: KeyVersionView) {
        self.id = view.id
        self.purpose = view.purpose
        self.version = view.version
        self.state = view.state.rawValue
        self.createdAt = view.createdAt
        self.kekVersion = view.kekVersion
        self.values = view.values
        self.root = view.root
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(purpose, forKey: .purpose)
        try container.encode(version, forKey: .version)
        try container.encode(state, forKey: .state)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(kekVersion, forKey: .kekVersion)
        try container.encode(values, forKey: .values)
        try container.encode(root, forKey: .root)
    }
}

struct RotationResponse: ResponseEncodable {
    let kekVersion: Int
    let dataKeyVersions: [String: Int]
    let rewrapped: Int
    let erasedKEKs: [Int]

    enum CodingKeys: String, CodingKey {
        case rewrapped
        case kekVersion = "kek_version"
        case dataKeyVersions = "data_key_versions"
        case erasedKEKs = "erased_kek_versions"
    }

    init(_ result: RotationResult) {
        self.kekVersion = result.kekVersion
        self.dataKeyVersions = result.dataKeyVersions
        self.rewrapped = result.rewrapped
        self.erasedKEKs = result.erasedKEKs
    }
}

struct DestructionJobResponse: Encodable, Sendable {
    let id: String
    let key: String
    let state: String
    let total: Int64
    let done: Int64
    let error: String
    let requestedBy: String
    let createdAt: Date
    let updatedAt: Date
    let finishedAt: Date?

    enum CodingKeys: String, CodingKey {
        case id, key, state, total, done, error
        case requestedBy = "requested_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case finishedAt = "finished_at"
    }

    init(_ job: DestructionJobRecord) {
        self.id = String(job.id)
        self.key = job.kind == .reseal ? "reseal" : "\(job.purpose)-v\(job.version)"
        self.state = job.state.rawValue
        self.total = job.total
        self.done = job.done
        self.error = job.error
        self.requestedBy = job.requestedBy
        self.createdAt = job.createdAt
        self.updatedAt = job.updatedAt
        self.finishedAt = job.finishedAt
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(key, forKey: .key)
        try container.encode(state, forKey: .state)
        try container.encode(total, forKey: .total)
        try container.encode(done, forKey: .done)
        try container.encode(error, forKey: .error)
        try container.encode(requestedBy, forKey: .requestedBy)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(updatedAt, forKey: .updatedAt)
        try container.encode(finishedAt, forKey: .finishedAt)
    }
}

/// The answer to `DELETE /api/v1/keys/versions/{id}`: the job (202), or `null` when a
/// key-encryption key version was erased at once (200).
struct DestroyResponse: ResponseEncodable {
    let job: DestructionJobResponse?

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(job, forKey: .job)
    }

    enum CodingKeys: String, CodingKey {
        case job
    }
}
