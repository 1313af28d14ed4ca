/// The role check each domain operation starts with (CONTRACT §4 roles): a refusal is
/// recorded in the audit trail as `denied`, then thrown as `forbidden`.
public struct AccessControl: Sendable {
    private let audit: AuditLog

    public init(audit: AuditLog) {
        self.audit = audit
    }

    /// Lets `principal` on if its role meets `requirement`.
    public func require(
        _ principal: Principal, _ requirement: Role.Requirement, action: String, resource: String, space: String?
    ) async throws {
        do {
            try principal.require(requirement)
        } catch {
            await audit.recordDenied(action, resource: resource, space: space ?? principal.space, by: principal)
            throw error
        }
    }

    /// Lets `principal` on if it is an admin key on the root space (the key lifecycle).
    public func requireRootAdmin(_ principal: Principal, action: String, resource: String) async throws {
        do {
            try principal.require(.admin)
            guard principal.space == "root" else {
                throw CofferError.forbidden("key lifecycle needs an admin key on the root space")
            }
        } catch {
            await audit.recordDenied(action, resource: resource, space: "root", by: principal)
            throw error
        }
    }
}
