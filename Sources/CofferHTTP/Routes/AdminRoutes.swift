import CofferCore
import Foundation
import Hummingbird

/// Spaces, API keys and the audit trail: the `admin` routes.
struct AdminRoutes {
    let services: CofferServices

    func register(on api: RouterGroup<AppRequestContext>) {
        registerSpaces(on: api.group("spaces"))
        registerAPIKeys(on: api.group("api-keys"))
        let audit = services.audit
        api.get("audit-events") { request, context in
            let principal = try context.requirePrincipal()
            let (limit, cursor) = try Pagination.parse(request)
            let query = request.uri.queryParameters
            func text(_ name: String) throws -> String? {
                guard let value = query.get(name) else { return nil }
                guard (1...512).contains(value.utf8.count), !value.unicodeScalars.contains(where: { $0.value < 0x20 }) else {
                    throw CofferError.invalidFilter("`\(name)` must be 1 to 512 characters without control characters")
                }
                return value
            }
            func date(_ name: String) throws -> Date? {
                guard let value = try text(name) else { return nil }
                guard let date = try? Date(value, strategy: .iso8601) else {
                    throw CofferError.invalidFilter("`\(name)` must be an RFC 3339 time such as 2026-01-31T12:00:00Z")
                }
                return date
            }
            var outcome: AuditRecord.Outcome?
            if let value = try text("outcome") {
                guard let parsed = AuditRecord.Outcome(rawValue: value) else {
                    throw CofferError.invalidFilter("`outcome` must be success, denied or failure")
                }
                outcome = parsed
            }
            let filter = AuditFilter(
                actor: try text("actor"), action: try text("action"), resource: try text("resource"),
                outcome: outcome, since: try date("since"), until: try date("until")
            )
            let page = try await audit.list(filter, limit: limit, cursor: cursor, by: principal)
            return ListResponse(items: page.items.map(AuditEventResponse.init), nextCursor: page.nextCursor)
        }
    }

    private func registerSpaces(on group: RouterGroup<AppRequestContext>) {
        let spaces = services.spaces
        group.post { request, context in
            let body = try await request.decodeStrict(as: SpaceCreateRequest.self, context: context)
            let input = SpaceInput(id: body.id, name: body.name, parent: body.parent ?? "root", description: body.description ?? "")
            let record = try await spaces.create(input, by: context.requirePrincipal())
            return EditedResponse(status: .created, response: SpaceResponse(record))
        }
        group.get { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await spaces.list(limit: limit, cursor: cursor, by: context.requirePrincipal())
            return ListResponse(items: page.items.map(SpaceResponse.init), nextCursor: page.nextCursor)
        }
        group.get(":id") { _, context in
            SpaceResponse(try await spaces.space(id: context.parameters.require("id"), by: context.requirePrincipal()))
        }
        group.patch(":id") { request, context in
            let body = try await request.decodeStrict(as: SpacePatchRequest.self, context: context)
            let patch = SpacePatch(name: body.name, parent: body.parent, description: body.description)
            return SpaceResponse(try await spaces.update(id: context.parameters.require("id"), patch, by: context.requirePrincipal()))
        }
        group.delete(":id") { _, context in
            try await spaces.delete(id: context.parameters.require("id"), by: context.requirePrincipal())
            return Response(status: .noContent)
        }
    }

    private func registerAPIKeys(on group: RouterGroup<AppRequestContext>) {
        let apiKeys = services.apiKeys
        group.post { request, context in
            let body = try await request.decodeStrict(as: APIKeyCreateRequest.self, context: context)
            let created = try await apiKeys.create(name: body.name, space: body.space ?? "root", role: body.role, by: context.requirePrincipal())
            return EditedResponse(status: .created, response: APIKeyResponse(created.record, secret: created.secret))
        }
        group.get { request, context in
            let (limit, cursor) = try Pagination.parse(request)
            let page = try await apiKeys.list(limit: limit, cursor: cursor, by: context.requirePrincipal())
            return ListResponse(items: page.items.map { APIKeyResponse($0) }, nextCursor: page.nextCursor)
        }
        group.delete(":id") { _, context in
            try await apiKeys.revoke(id: context.parameters.require("id"), by: context.requirePrincipal())
            return Response(status: .noContent)
        }
    }
}
