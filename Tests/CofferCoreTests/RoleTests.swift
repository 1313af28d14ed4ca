import CofferCore
import Testing

@Suite struct RoleTests {
    /// The contract's role table: read < write < admin; worker apart; admin does not imply worker.
    @Test(arguments: [
        (Role.read, Role.Requirement.metadata, true), (.read, .read, true), (.read, .write, false), (.read, .admin, false), (.read, .worker, false),
        (.write, .metadata, true), (.write, .read, true), (.write, .write, true), (.write, .admin, false), (.write, .worker, false),
        (.admin, .metadata, true), (.admin, .read, true), (.admin, .write, true), (.admin, .admin, true), (.admin, .worker, false),
        (.worker, .metadata, true), (.worker, .read, false), (.worker, .write, false), (.worker, .admin, false), (.worker, .worker, true),
    ])
    func roleTable(role: Role, requirement: Role.Requirement, allowed: Bool) {
        #expect(role.satisfies(requirement) == allowed)
    }
}
