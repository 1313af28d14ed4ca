import CofferCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The body of an operation: one item's fields, or `batch` (1 to 1,000 items, each with
/// only those fields), plus `include_plaintext` for `datakey`. Read from the parsed JSON
/// object directly: JSONDecoder made decoding a 1,000-item batch cost more than
/// encrypting it.
struct KMSOperationBody {
    var items: [KMSItem]
    var isBatch: Bool
    var includePlaintext = true

    /// The fields of one item of an operation.
    static func itemFields(_ operation: KMSOperation) -> Set<String> {
        switch operation {
        case .encrypt: ["plaintext", "context"]
        case .decrypt, .rewrap: ["ciphertext", "context"]
        case .datakey: ["context"]
        }
    }

    static func allowed(_ operation: KMSOperation) -> Set<String> {
        itemFields(operation).union(operation == .datakey ? ["batch", "include_plaintext"] : ["batch"])
    }

    init(_ object: [String: Any], operation: KMSOperation) throws {
        let fields = Self.itemFields(operation)
        if let value = object["include_plaintext"] {
            // JSONSerialization gives booleans as CFBoolean and numbers as NSNumber, and an
            // NSNumber casts to Bool: only a real JSON boolean is accepted.
            guard let flag = value as? Bool, String(describing: type(of: value)).contains("Boolean") else {
                throw CofferError.invalidField("`include_plaintext` must be a boolean")
            }
            includePlaintext = flag
        }
        guard let batchValue = object["batch"] else {
            items = [try Self.item(object, fields: fields, path: "")]
            isBatch = false
            return
        }
        guard object.keys.allSatisfy({ !fields.contains($0) }) else {
            throw CofferError.invalidBatch("send either the fields of one item or `batch`, not both")
        }
        guard let batch = batchValue as? [Any] else { throw CofferError.invalidField("`batch` must be an array of objects") }
        guard !batch.isEmpty else { throw CofferError.emptyBatch("`batch` needs at least one item") }
        guard batch.count <= KMSService.maximumBatch else {
            throw CofferError.tooLarge("`batch` may hold at most \(KMSService.maximumBatch) items")
        }
        var items: [KMSItem] = []
        items.reserveCapacity(batch.count)
        for (index, element) in batch.enumerated() {
            guard let item = element as? [String: Any] else {
                throw CofferError.invalidField("`batch[\(index)]` must be an object")
            }
            items.append(try Self.item(item, fields: fields, path: "batch[\(index)]."))
        }
        self.items = items
        isBatch = true
    }

    static func item(_ object: [String: Any], fields: Set<String>, path: String) throws -> KMSItem {
        if !path.isEmpty { try Request.refuseUnknownKeys(object, allowed: fields, in: " in `\(path.dropLast())`") }
        func string(_ name: String) throws -> String? {
            guard let value = object[name] else { return nil }
            guard let text = value as? String else {
                throw CofferError.invalidField("`\(path)\(name)` must be a string\(value is NSNull ? ", not null" : "")")
            }
            return text
        }
        return KMSItem(plaintext: try string("plaintext"), ciphertext: try string("ciphertext"), context: try string("context"))
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
/// Written by hand: JSONEncoder took a fifth of the time of a 1,000-item batch.
struct KMSOperationResponse: ResponseGenerator {
    let operation: KMSOperation
    let outcomes: [KMSItemOutcome]
    let isBatch: Bool

    func response(from request: Request, context: some RequestContext) throws -> Response {
        var out: [UInt8] = []
        out.reserveCapacity(64 + outcomes.count * 140)
        if isBatch {
            out.append(contentsOf: Array(#"{"batch":["#.utf8))
            for (index, outcome) in outcomes.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                append(outcome, to: &out)
            }
            out.append(contentsOf: Array("]}".utf8))
        } else if let outcome = outcomes.first {
            append(outcome, to: &out)
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: out)))
    }

    private func append(_ outcome: KMSItemOutcome, to out: inout [UInt8]) {
        func field(_ name: String, _ value: String?, first: Bool = false) {
            if !first { out.append(UInt8(ascii: ",")) }
            JSONLogHandler.appendString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            if let value { JSONLogHandler.appendString(value, to: &out) } else { out.append(contentsOf: Array("null".utf8)) }
        }
        if let error = outcome.error { return ErrorBody.append(error, to: &out) }
        out.append(UInt8(ascii: "{"))
        let plaintext = outcome.plaintext.map { Data($0).base64EncodedString() }
        switch operation {
        case .encrypt, .rewrap: field("ciphertext", outcome.ciphertext, first: true)
        case .decrypt: field("plaintext", plaintext, first: true)
        case .datakey:
            field("ciphertext", outcome.ciphertext, first: true)
            field("plaintext", plaintext)  // null when not asked for
        }
        out.append(contentsOf: Array(#","key_version":"#.utf8))
        out.append(contentsOf: Array(String(outcome.keyVersion ?? 0).utf8))
        out.append(UInt8(ascii: "}"))
    }
}
