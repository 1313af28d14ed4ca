import CofferCore
import Foundation
import Hummingbird

/// Key lifecycle routes (CONTRACT §5): admin on the root space.
struct KeyRoutes {
    let services: CofferServices

    func register(on api: RouterGroup<AppRequestContext>) {
        let services = self.services
        let lifecycle = services.keys
        api.get("keys") { _, context in
            ItemsResponse(items: try await lifecycle.list(by: context.requirePrincipal()).map(KeyVersionResponse.init))
        }
        api.post("keys/rotate") { request, context in
            let body = try await request.decodeStrict(as: RotateRequest.self, context: context)
            let result = try await lifecycle.rotate(rewrap: body.rewrap ?? false, by: context.requirePrincipal())
            return RotationResponse(result)
        }
        api.delete("keys/versions/:id") { _, context in
            let job = try await lifecycle.destroy(context.parameters.require("id"), by: context.requirePrincipal())
            guard let job else { return EditedResponse(status: .ok, response: DestroyResponse(job: nil)) }
            return EditedResponse(status: .accepted, response: DestroyResponse(job: DestructionJobResponse(job)))
        }
        api.get("keys/destruction-jobs") { _, context in
            ItemsResponse(items: try await lifecycle.jobs(by: context.requirePrincipal()).map(DestructionJobResponse.init))
        }
    }
}
