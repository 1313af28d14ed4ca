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

    /// Lets `principal` grant `role` (after ``require(_:_:action:resource:space:)`` let it
    /// manage keys at all). `worker` reads every decrypted value, write-only ones included,
    /// of the stacks in its space, so only the command line and admins of the root space
    /// grant it: a space admin could otherwise mint one and read what its writers hid.
    public func requireGrant(of role: Role, by principal: Principal, action: String, resource: String, space: String?) async throws {
        guard role == .worker, principal.space != "root" else { return }
        await audit.recordDenied(action, resource: resource, space: space ?? principal.space, by: principal, detail: "role=\(role.rawValue)")
        throw CofferError.roleNotGrantable("only the command line and admins of the root space grant the worker role")
    }

    /// Lets `principal` on if it is an admin key on the root space (the key lifecycle).
    public func requireRootAdmin(_ principal: Principal, action: String, resource: String) async throws {
        try await require(principal, .admin, action: action, resource: resource, space: "root")
        guard principal.space == "root" else {
            await audit.recordDenied(action, resource: resource, space: "root", by: principal)
            throw CofferError.forbidden("key lifecycle needs an admin key on the root space")
        }
    }
}
