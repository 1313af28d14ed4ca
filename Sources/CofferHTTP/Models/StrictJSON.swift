import CofferCore
import Foundation
import Hummingbird

/// A request body type whose JSON object may carry only its own keys.
protocol StrictRequestBody: Decodable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

extension Request {
    /// Decodes a JSON object body strictly: at most 4 MiB (413 beyond), valid UTF-8 JSON,
    /// an object with no unknown keys, every field of the right type. Every failure is a
    /// 400 naming the field, never echoing a value.
    func decodeStrict<Body: StrictRequestBody>(as type: Body.Type, context: AppRequestContext) async throws -> Body {
        let (data, _) = try await strictJSONObject(allowed: Set(Body.CodingKeys.allCases.map(\.stringValue)), context: context)
        do {
            return try JSONDecoder().decode(Body.self, from: data)
        } catch let error as DecodingError {
            throw CofferError.invalidField(Self.describe(error))
        } catch let error as CofferError {
            throw error
        } catch {
            throw CofferError.invalidJSON("the request body could not be read")
        }
    }

    /// Reads a JSON object body (at most 4 MiB, 413 beyond) whose keys are all in
    /// `allowed`; returns its bytes and the parsed object. Every failure is a 400.
    func strictJSONObject(allowed: Set<String>, context: AppRequestContext) async throws -> (Data, [String: Any]) {
        var request = self
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        let data = Data(buffer: buffer)
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data, options: [])
        } catch {
            throw CofferError.invalidJSON("the request body is not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw CofferError.invalidJSON("the request body must be a JSON object")
        }
        try Self.refuseUnknownKeys(dictionary, allowed: allowed)
        return (data, dictionary)
    }

    /// A 400 naming the first key of `object` outside `allowed` (never echoing an unprintable one).
    static func refuseUnknownKeys(_ object: [String: Any], allowed: Set<String>, in path: String = "") throws {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            let shown = unknown.count <= 64 && unknown.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value < 0x7f }) ? "`\(unknown)`" : "(unprintable)"
            throw CofferError.unknownField("unknown field \(shown)\(path); allowed: \(allowed.sorted().joined(separator: ", "))")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ key: CodingKey? = nil) -> String {
            let keys = (context.codingPath + (key.map { [$0] } ?? [])).map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            return keys.isEmpty ? "the body" : "`" + keys.joined(separator: ".") + "`"
        }
        switch error {
        case .keyNotFound(let key, let context): return "\(path(context, key)) is required"
        case .typeMismatch(let type, let context): return "\(path(context)) must be \(describe(type))"
        case .valueNotFound(let type, let context): return "\(path(context)) must be \(describe(type)), not null"
        case .dataCorrupted(let context): return "\(path(context)) has an invalid value"
        @unknown default: return "the request body is invalid"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int32.Type, is Int64.Type: return "an integer"
        case is [String].Type: return "an array of strings"
        default: return "of another type"
        }
    }
}
