import CofferStore
import Foundation
import Logging

/// Writes the audit trail. A successful action records its event on the connection of
/// its own transaction, so the action and its event commit or fail together. A refused
/// action records a `denied` event on its own, best effort; identical refusals that repeat
/// within a window are gathered into one event (``RefusalAggregator``) when `refusals` is
/// set, as it is in every serving process.
public struct AuditLog: Sendable {
    private let database: Database
    private let repository: AuditRepository
    private let owners: OwnerRepository
    private let logger: Logger
    /// Gathers repeated refusals; nil writes every refusal on its own.
    public let refusals: RefusalAggregator?
    /// Makes each event's writer's code (``AuditChain``); nil only in tests of services alone.
    public let keyring: Keyring?
    /// Reach by authenticated space rows, for the events an admin may list.
    private let tree: SpaceTree?

    public init(database: Database, keyring: Keyring?, tree: SpaceTree? = nil, refusals: RefusalAggregator? = nil, logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.tree = tree ?? keyring.map { SpaceTree(integrity: RowIntegrity(keyring: $0, logger: logger), logger: logger) }
        self.repository = AuditRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.refusals = refusals
        self.logger = logger
    }

    /// Records a successful action in the caller's transaction.
    public func record(
        _ action: String, resource: String, space: String?, by principal: Principal, detail: String = "",
        on session: StoreSession
    ) async throws {
        let event = event(action, resource: resource, space: space, principal: principal, outcome: .success, detail: detail)
        try await repository.insert(event, code: code(event), on: session)
    }

    /// Records a refused action in a transaction of its own. Never throws: the caller is
    /// about to report the refusal, which matters more than its record.
    public func recordDenied(_ action: String, resource: String, space: String?, by principal: Principal, detail: String = "") async {
        let event = event(action, resource: resource, space: space, principal: principal, outcome: .denied, detail: detail)
        guard refusals?.admit(event) ?? true else { return }
        await recordOnItsOwn(event)
    }

    /// Writes one event for each window of repeated refusals that has ended (every window
    /// with `all`, at shutdown). Returns how many events it wrote.
    @discardableResult
    public func flushRefusals(all: Bool = false) async -> Int {
        guard let summaries = refusals?.drain(all: all), !summaries.isEmpty else { return 0 }
        for summary in summaries { await recordOnItsOwn(summary) }
        return summaries.count
    }

    /// Records an action that was allowed but failed, in a transaction of its own; never throws.
    public func recordFailure(_ action: String, resource: String, space: String?, by principal: Principal, detail: String = "") async {
        await recordOnItsOwn(event(action, resource: resource, space: space, principal: principal, outcome: .failure, detail: detail))
    }

    /// Records an action that ran outside any transaction of the caller's, in a statement of
    /// its own; throws if the record could not be stored, for callers that must not answer
    /// before it is (a KMS operation's outcomes).
    public func recordStored(
        _ action: String, resource: String, space: String?, by principal: Principal, outcome: AuditRecord.Outcome, detail: String
    ) async throws {
        let (repository, event) = (self.repository, event(action, resource: resource, space: space, principal: principal, outcome: outcome, detail: detail))
        let code = code(event)
        try await database.withSession { try await repository.insert(event, code: code, on: $0) }
    }

    private func recordOnItsOwn(_ event: AuditRecord) async {
        let action = event.action
        let (repository, code) = (self.repository, code(event))
        do {
            try await database.withSession { try await repository.insert(event, code: code, on: $0) }
        } catch {
            logger.warning("could not record a refused or failed action in the audit trail", metadata: ["action": "\(action)", "error": "\(error)"])
        }
    }

    /// A page of events the caller may see (an admin; events of spaces in its reach),
    /// newest first. The filter's `spaces` is replaced by the caller's reach.
    public func list(_ filter: AuditFilter, limit: Int, cursor: String?, by principal: Principal) async throws -> Page<AuditRecord> {
        try await AccessControl(audit: self).require(principal, .admin, action: "audit.list", resource: "audit:*", space: nil)
        var filter = filter
        if let before = try Pagination.key(of: cursor, { Int64($0) }) { filter.before = before }
        let (repository, owners, tree) = (self.repository, self.owners, self.tree)
        let rows = try await database.withSession { [filter] session in
            var scoped = filter
            let reach = try await owners.spaceSubtree(of: principal.space, on: session)
            scoped.spaces = try await tree?.subtree(of: principal.space, reach, on: session) ?? reach
            return try await repository.list(scoped, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        return Page(rows: rows, limit: limit, key: { String($0.id) })
    }

    /// The writer's code of an event (``AuditChain``).
    func code(_ event: AuditRecord) -> (bytes: [UInt8], version: Int32)? {
        keyring.flatMap { AuditChain.code(for: event, keyring: $0) }.map { ($0.code, $0.version) }
    }

    /// The writer's code of an event a statement of the store writes along with its action.
    public func code(requestID: String, actor: String, action: String, resource: String) -> (bytes: [UInt8], version: Int32)? {
        keyring.flatMap {
            AuditChain.code(requestID: requestID, actor: actor, action: action, resource: resource, outcome: .success, keyring: $0)
        }.map { ($0.code, $0.version) }
    }

    private func event(_ action: String, resource: String, space: String?, principal: Principal, outcome: AuditRecord.Outcome, detail: String) -> AuditRecord {
        AuditRecord(
            actor: principal.apiKeyID, actorSpace: principal.space, action: action, resource: resource, space: space,
            requestID: principal.requestID, outcome: outcome, detail: detail
        )
    }
}
