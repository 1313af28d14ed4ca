import CofferCore
import CofferStore
import Foundation
import Hummingbird

/// Coffer as a KMS for applications: named keys under `/api/v1/kms/keys` and their
/// encrypt, decrypt, rewrap and datakey operations, each in a single or a `batch` form.
struct KMSRoutes {
    let services: AppServices

    func register(on api: RouterGroup<AppRequestContext>) {
        let kms = services.kms
        let group = api.group("kms/keys")
        group.post { request, context in
            let body = try await request.decodeStrict(as: KMSKeyCreateRequest.self, context: context)
            let input = KMSKeyInput(name: body.name, algorithm: body.algorithm ?? KMSAlgorithm.aes256GCM.rawValue,
                                    description: body.description ?? "", space: body.space)
            return EditedResponse(status: .created, response: KMSKeyResponse(try await kms.create(input, by: context.requirePrincipal())))
        }
        group.get { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await kms.list(limit: limit, cursor: cursor, by: context.requirePrincipal())
            return ListResponse(items: page.items.map(KMSKeyResponse.init), nextCursor: page.nextCursor)
        }
        group.get(":keyName") { _, context in
            KMSKeyResponse(try await kms.key(name: context.parameters.require("keyName"), by: context.requirePrincipal()))
        }
        group.patch(":keyName") { request, context in
            let body = try await request.decodeStrict(as: KMSKeyPatchRequest.self, context: context)
            let patch = KMSKeyPatch(description: body.description, minDecryptionVersion: body.minDecryptionVersion, enabled: body.enabled)
            return KMSKeyResponse(try await kms.update(name: context.parameters.require("keyName"), patch, by: context.requirePrincipal()))
        }
        group.delete(":keyName") { request, context in
            let body = try await request.decodeStrict(as: KMSKeyDeleteRequest.self, context: context)
            try await kms.delete(name: context.parameters.require("keyName"), confirm: body.confirm, by: context.requirePrincipal())
            return Response(status: .noContent)
        }
        group.post(":keyName/rotate") { _, context in
            KMSKeyResponse(try await kms.rotate(name: context.parameters.require("keyName"), by: context.requirePrincipal()))
        }
        group.post(":keyName/encrypt") { request, context in
            let body = try await request.decodeStrict(as: KMSEncryptRequest.self, context: context)
            let single = body.plaintext != nil || body.context != nil
            let items = try Self.items(single: single ? KMSItem(plaintext: body.plaintext, context: body.context) : nil, batch: body.batch)
            return try await Self.answer(.encrypt, items: items, kms: kms, context: context)
        }
        for operation in [KMSOperation.decrypt, .rewrap] {
            group.post(RouterPath(stringLiteral: ":keyName/\(operation.rawValue)")) { request, context in
                let body = try await request.decodeStrict(as: KMSCiphertextRequest.self, context: context)
                let single = body.ciphertext != nil || body.context != nil
                let items = try Self.items(single: single ? KMSItem(ciphertext: body.ciphertext, context: body.context) : nil, batch: body.batch)
                return try await Self.answer(operation, items: items, kms: kms, context: context)
            }
        }
        group.post(":keyName/datakey") { request, context in
            let body = try await request.decodeStrict(as: KMSDataKeyRequest.self, context: context)
            let items = try Self.items(single: body.batch == nil ? KMSItem(context: body.context) : nil, batch: body.batch,
                                       singleGiven: body.context != nil)
            return try await Self.answer(.datakey, items: items, includePlaintext: body.includePlaintext ?? true, kms: kms, context: context)
        }
    }

    /// The items of a request: its single form or its batch, never both.
    static func items(single: KMSItem?, batch: [KMSBatchItem]?, singleGiven: Bool? = nil) throws -> (items: [KMSItem], batch: Bool) {
        if let batch {
            guard !(singleGiven ?? (single != nil)) else {
                throw CofferError.invalidInput("send either the fields of one item or `batch`, not both", code: "invalid_batch")
            }
            guard !batch.isEmpty else { throw CofferError.invalidInput("`batch` needs at least one item", code: "empty_batch") }
            guard batch.count <= KMSService.maximumBatch else {
                throw CofferError.tooLarge("`batch` may hold at most \(KMSService.maximumBatch) items")
            }
            return (batch.map { KMSItem(plaintext: $0.plaintext, ciphertext: $0.ciphertext, context: $0.context) }, true)
        }
        return ([single ?? KMSItem()], false)
    }

    static func answer(_ operation: KMSOperation, items: (items: [KMSItem], batch: Bool), includePlaintext: Bool = true, kms: KMSService,
                       context: AppRequestContext) async throws -> KMSOperationResponse {
        let outcomes = try await kms.perform(operation, key: context.parameters.require("keyName"), items: items.items,
                                             includePlaintext: includePlaintext, by: context.requirePrincipal())
        if items.batch {
            return KMSOperationResponse(operation: operation, single: nil, batch: outcomes)
        }
        if let error = outcomes.first?.error { throw error }
        return KMSOperationResponse(operation: operation, single: outcomes.first, batch: nil)
    }
}

/// `POST /api/v1/kms/keys` body.
struct KMSKeyCreateRequest: StrictRequestBody {
    let name: String
    let algorithm: String?
    let description: String?
    let space: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, algorithm, description, space
    }
}

/// `PATCH /api/v1/kms/keys/{keyName}` body: every field optional.
struct KMSKeyPatchRequest: StrictRequestBody {
    let description: String?
    let minDecryptionVersion: Int?
    let enabled: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case description, enabled
        case minDecryptionVersion = "min_decryption_version"
    }
}

/// `DELETE /api/v1/kms/keys/{keyName}` body.
struct KMSKeyDeleteRequest: StrictRequestBody {
    let confirm: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case confirm
    }
}

/// One item of a `batch`: the fields of the operation's single form, nothing else.
struct KMSBatchItem: Decodable, Sendable {
    let plaintext: String?
    let ciphertext: String?
    let context: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case plaintext, ciphertext, context
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        let keys = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue)
        if keys.contains(where: { CodingKeys(rawValue: $0) == nil }) {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown field in a batch item"))
        }
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.plaintext = try container.decodeIfPresent(String.self, forKey: .plaintext)
        self.ciphertext = try container.decodeIfPresent(String.self, forKey: .ciphertext)
        self.context = try container.decodeIfPresent(String.self, forKey: .context)
    }
}

/// `POST …/encrypt` body: `plaintext` (base64) and optional `context` (base64), or `batch`.
struct KMSEncryptRequest: StrictRequestBody {
    let plaintext: String?
    let context: String?
    let batch: [KMSBatchItem]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case plaintext, context, batch
    }
}

/// `POST …/decrypt` and `…/rewrap` body: `ciphertext` and optional `context`, or `batch`.
struct KMSCiphertextRequest: StrictRequestBody {
    let ciphertext: String?
    let context: String?
    let batch: [KMSBatchItem]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ciphertext, context, batch
    }
}

/// `POST …/datakey` body: optional `context`, `include_plaintext` (default true), or `batch` of contexts.
struct KMSDataKeyRequest: StrictRequestBody {
    let context: String?
    let includePlaintext: Bool?
    let batch: [KMSBatchItem]?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case context, batch
        case includePlaintext = "include_plaintext"
    }
}

/// A named key as the API shows it: never its material.
struct KMSKeyResponse: ResponseEncodable {
    let name: String
    let space: String
    let algorithm: String
    let description: String
    let latestVersion: Int
    let minDecryptionVersion: Int
    let enabled: Bool
    let createdBy: String
    let createdAt: Date
    let updatedAt: Date

    enum CodingKeys: String, CodingKey {
        case name, space, algorithm, description, enabled
        case latestVersion = "latest_version"
        case minDecryptionVersion = "min_decryption_version"
        case createdBy = "created_by"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    init(_ record: KMSKeyRecord) {
        self.name = record.name
        self.space = record.space
        self.algorithm = record.algorithm
        self.description = record.description
        self.latestVersion = Int(record.latestVersion)
        self.minDecryptionVersion = Int(record.minDecryptionVersion)
        self.enabled = record.enabled
        self.createdBy = record.createdBy
        self.createdAt = record.createdAt
        self.updatedAt = record.updatedAt
    }
}

/// The answer of an operation: the single item's fields, or `{"batch": [...]}` with one
/// entry per item in order, each either the fields or `{"error": {"code", "message"}}`.
struct KMSOperationResponse: ResponseEncodable {
    let operation: KMSOperation
    let single: KMSItemOutcome?
    let batch: [KMSItemOutcome]?

    enum Keys: String, CodingKey {
        case ciphertext, plaintext, batch, error, code, message
        case keyVersion = "key_version"
    }

    struct Item: Encodable {
        let operation: KMSOperation
        let outcome: KMSItemOutcome

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            if let error = outcome.error {
                var nested = container.nestedContainer(keyedBy: Keys.self, forKey: .error)
                try nested.encode(error.code, forKey: .code)
                try nested.encode(error.message, forKey: .message)
                return
            }
            switch operation {
            case .encrypt, .rewrap:
                try container.encode(outcome.ciphertext, forKey: .ciphertext)
            case .decrypt:
                try container.encode(outcome.plaintext.map { Data($0).base64EncodedString() }, forKey: .plaintext)
            case .datakey:
                try container.encode(outcome.ciphertext, forKey: .ciphertext)
                try container.encode(outcome.plaintext.map { Data($0).base64EncodedString() }, forKey: .plaintext)  // null when not asked for
            }
            try container.encode(outcome.keyVersion, forKey: .keyVersion)
        }
    }

    func encode(to encoder: any Encoder) throws {
        if let batch {
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(batch.map { Item(operation: operation, outcome: $0) }, forKey: .batch)
        } else if let single {
            try Item(operation: operation, outcome: single).encode(to: encoder)
        }
    }
}
