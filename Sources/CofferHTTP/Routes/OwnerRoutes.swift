import CofferCore
import Foundation
import Hummingbird

/// Stacks and contexts (same routes under `/stacks` and `/contexts`): the objects, their
/// config elements, attachments, and a stack's runtime config.
struct OwnerRoutes {
    let services: CofferServices

    func register(on api: RouterGroup<AppRequestContext>) {
        for kind in OwnerKind.allCases {
            register(kind, on: api.group(RouterPath(stringLiteral: kind == .stack ? "stacks" : "contexts")))
        }
        api.put("stacks/:id/contexts/:contextId") { request, context in
            let body = try await request.decodeStrict(as: AttachRequest.self, context: context)
            let stackID = try context.parameters.require("id")
            let contextID = try context.parameters.require("contextId")
            try await services.attachments.attach(stackID: stackID, contextID: contextID, priority: body.priority, by: context.requirePrincipal())
            return AttachResponse(stack: stackID, context: contextID, priority: body.priority)
        }
        api.delete("stacks/:id/contexts/:contextId") { _, context in
            try await services.attachments.detach(
                stackID: context.parameters.require("id"), contextID: context.parameters.require("contextId"),
                by: context.requirePrincipal()
            )
            return Response(status: .noContent)
        }
        api.get("stacks/:id/runtime-config") { _, context in
            let items = try await services.runtimeConfig.resolve(stackID: context.parameters.require("id"), by: context.requirePrincipal())
            return RuntimeConfigItemResponse.body(items)
        }
    }

    private func register(_ kind: OwnerKind, on group: RouterGroup<AppRequestContext>) {
        group.post { request, context in
            let body = try await request.decodeStrict(as: OwnerCreateRequest.self, context: context)
            let input = OwnerInput(
                id: body.id, name: body.name, space: body.space ?? "root",
                labels: body.labels ?? [], description: body.description ?? ""
            )
            let record = try await services.owners.createOwner(kind, input, by: context.requirePrincipal())
            return EditedResponse(status: .created, response: OwnerResponse(record))
        }
        group.get { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await services.owners.listOwners(kind, limit: limit, cursor: cursor, by: context.requirePrincipal())
            return ListResponse(items: page.items.map(OwnerResponse.init), nextCursor: page.nextCursor)
        }
        group.get(":id") { _, context in
            OwnerResponse(try await services.owners.owner(kind, id: context.parameters.require("id"), by: context.requirePrincipal()))
        }
        group.patch(":id") { request, context in
            let body = try await request.decodeStrict(as: OwnerPatchRequest.self, context: context)
            let patch = OwnerPatch(name: body.name, space: body.space, labels: body.labels, description: body.description)
            let record = try await services.owners.updateOwner(kind, id: context.parameters.require("id"), patch, by: context.requirePrincipal())
            return OwnerResponse(record)
        }
        group.delete(":id") { _, context in
            try await services.owners.deleteOwner(kind, id: context.parameters.require("id"), by: context.requirePrincipal())
            return Response(status: .noContent)
        }
        group.get(":id/config") { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await services.elements.listElements(
                kind, ownerID: context.parameters.require("id"), limit: limit, cursor: cursor, by: context.requirePrincipal()
            )
            return ListResponse(items: page.items.map(ConfigElementResponse.init), nextCursor: page.nextCursor)
        }
        group.get(":id/config/:configId") { _, context in
            ConfigElementResponse(try await services.elements.element(
                kind, ownerID: context.parameters.require("id"), configID: try Self.configID(context), by: context.requirePrincipal()
            ))
        }
        group.put(":id/config/:configId") { request, context in
            let body = try await request.decodeStrict(as: ConfigElementRequest.self, context: context)
            let input = ConfigElementInput(
                type: body.type, value: body.value, writeOnly: body.writeOnly ?? false, description: body.description ?? ""
            )
            let (view, created) = try await services.elements.putElement(
                kind, ownerID: context.parameters.require("id"), configID: try Self.configID(context),
                input, by: context.requirePrincipal()
            )
            return EditedResponse(status: created ? .created : .ok, response: ConfigElementResponse(view))
        }
        group.get(":id/config/:configId/versions") { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await services.elements.versions(
                kind, ownerID: context.parameters.require("id"), configID: try Self.configID(context),
                limit: limit, cursor: cursor, by: context.requirePrincipal()
            )
            return ListResponse(items: page.items.map(ConfigVersionResponse.init), nextCursor: page.nextCursor)
        }
        group.post(":id/config/:configId/versions/:version/restore") { _, context in
            let text = try context.parameters.require("version")
            guard let number = Int(text), number > 0 else {
                throw CofferError.invalidVersion("the version in the path must be a positive integer")
            }
            let view = try await services.elements.restore(
                kind, ownerID: context.parameters.require("id"), configID: try Self.configID(context), version: number,
                by: context.requirePrincipal()
            )
            return ConfigElementResponse(view)
        }
        group.delete(":id/config/:configId") { _, context in
            try await services.elements.deleteElement(
                kind, ownerID: context.parameters.require("id"), configID: try Self.configID(context),
                by: context.requirePrincipal()
            )
            return Response(status: .noContent)
        }
    }

    /// The config id path segment, percent-decoded (a file path arrives as `dir%2Ffile`).
    static func configID(_ context: AppRequestContext) throws -> String {
        let raw = try context.parameters.require("configId")
        guard let decoded = raw.removingPercentEncoding, !decoded.isEmpty else {
            throw CofferError.invalidConfigID("the config id in the path is not valid percent-encoding")
        }
        return decoded
    }
}

/// `?limit=` (1…500, default 50) and `?cursor=` of list routes.
enum Pagination {
    static let defaultLimit = 50
    static let maximumLimit = 500

    static func parse(_ request: Request) throws -> (limit: Int, cursor: String?) {
        let query = request.uri.queryParameters
        var limit = defaultLimit
        if let text = query.get("limit") {
            guard let value = Int(text), (1...maximumLimit).contains(value) else {
                throw CofferError.invalidLimit("limit must be an integer from 1 to \(maximumLimit)")
            }
            limit = value
        }
        return (limit, query.get("cursor"))
    }

}
