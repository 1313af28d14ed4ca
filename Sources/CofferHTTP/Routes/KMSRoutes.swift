import CofferCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Coffer as a KMS for applications: named keys under `/api/v1/kms/keys` and their
/// encrypt, decrypt, rewrap and datakey operations, each in a single or a `batch` form.
struct KMSRoutes {
    let services: CofferServices

    func register(on api: RouterGroup<AppRequestContext>) {
        let (kms, metrics) = (services.kms, services.metrics)
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
        for operation in KMSOperation.allCases {
            group.post(RouterPath(stringLiteral: ":keyName/\(operation.rawValue)")) { request, context in
                let (_, object) = try await request.strictJSONObject(allowed: KMSOperationBody.allowed(operation), context: context)
                let body = try KMSOperationBody(object, operation: operation)
                let outcomes = try await kms.perform(operation, key: context.parameters.require("keyName"), items: body.items,
                                                     includePlaintext: body.includePlaintext, by: context.requirePrincipal())
                var counts: [String: Int] = [:]
                for outcome in outcomes { counts[outcome.error?.code.name ?? "ok", default: 0] += 1 }
                for (outcome, count) in counts { metrics.increment(.kmsItems, [operation.rawValue, outcome], by: count) }
                if !body.isBatch, let error = outcomes.first?.error { throw error }
                return KMSOperationResponse(operation: operation, outcomes: outcomes, isBatch: body.isBatch)
            }
        }
    }
}
