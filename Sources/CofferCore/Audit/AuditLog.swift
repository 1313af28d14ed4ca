import CofferStore
import Foundation
import Logging

/// Writes the audit trail. A successful action records its event on the connection of
/// its own transaction, so the action and its event commit or fail together. A refused
/// action records a `denied` event on its own, best effort.
public struct AuditLog: Sendable {
    private let database: Database
    private let repository: AuditRepository
    private let owners: OwnerRepository
    private let logger: Logger

    public init(database: Database, logger: Logger) {
        self.database = database
        self.repository = AuditRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.logger = logger
    }

    /// Records a successful action in the caller's transaction.
    public func record(
        _ action: String, resource: String, space: String?, by principal: Principal, detail: String = "",
        on session: StoreSession
    ) async throws {
        try await repository.insert(event(action, resource: resource, space: space, principal: principal, outcome: .success, detail: detail), on: session)
    }

    /// Records a refused action in a transaction of its own. Never throws: the caller is
    /// about to report the refusal, which matters more than its record.
    public func recordDenied(_ action: String, resource: String, space: String?, by principal: Principal, detail: String = "") async {
        await recordOnItsOwn(event(action, resource: resource, space: space, principal: principal, outcome: .denied, detail: detail))
    }

    /// Records an action that was allowed but failed, in a transaction of its own; never throws.
    public func recordFailure(_ action: String, resource: String, space: String?, by principal: Principal, detail: String = "") async {
        await recordOnItsOwn(event(action, resource: resource, space: space, principal: principal, outcome: .failure, detail: detail))
    }

    private func recordOnItsOwn(_ event: AuditRecord) async {
        let action = event.action
        let repository = self.repository
        do {
            try await database.withSession { try await repository.insert(event, on: $0) }
        } catch {
            logger.warning("could not record a refused or failed action in the audit trail", metadata: ["action": "\(action)", "error": "\(error)"])
        }
    }

    /// Checks the caller's role; a refusal is audited as `denied` and thrown as `forbidden`.
    public func authorize(
        _ principal: Principal, _ requirement: Role.Requirement, action: String, resource: String, space: String?
    ) async throws {
        do {
            try principal.require(requirement)
        } catch {
            await recordDenied(action, resource: resource, space: space ?? principal.space, by: principal)
            throw error
        }
    }

    /// A page of events the caller may see (an admin; events of spaces in its reach),
    /// newest first. The filter's `spaces` is replaced by the caller's reach.
    public func list(_ filter: AuditFilter, limit: Int, cursor: String?, by principal: Principal) async throws -> Page<AuditRecord> {
        try await authorize(principal, .admin, action: "audit.list", resource: "audit:*", space: nil)
        var filter = filter
        if let cursor, !cursor.isEmpty {
            guard let text = try ConfigValidation.decodeCursor(cursor), let before = Int64(text) else {
                throw CofferError.invalidCursor("the cursor is not one this server issued")
            }
            filter.before = before
        }
        let (repository, owners) = (self.repository, self.owners)
        let rows = try await database.withSession { [filter] session in
            var scoped = filter
            scoped.spaces = try await owners.spaceSubtree(of: principal.space, on: session)
            return try await repository.list(scoped, limit: limit + 1, on: session)
        }
        let items = Array(rows.prefix(limit))
        return Page(items: items, nextCursor: rows.count > limit ? items.last.map { ConfigValidation.encodeCursor(String($0.id)) } : nil)
    }

    private func event(_ action: String, resource: String, space: String?, principal: Principal, outcome: AuditRecord.Outcome, detail: String) -> AuditRecord {
        AuditRecord(
            actor: principal.apiKeyID, actorSpace: principal.space, action: action, resource: resource, space: space,
            requestID: principal.requestID, outcome: outcome, detail: detail
        )
    }
}
