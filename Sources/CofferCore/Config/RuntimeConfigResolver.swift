import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// The runtime config of a stack, resolved and decrypted for a worker (CONTRACT §3).
public struct RuntimeConfigResolver: ConfigServing {
    let parts: ConfigParts

    init(parts: ConfigParts) {
        self.parts = parts
    }

    /// The resolved elements of a stack with every value decrypted (CONTRACT §3): the
    /// stack's own elements win; then explicitly attached contexts by ascending priority,
    /// ties by context id; then auto-attached contexts by id. A context labelled
    /// `autoattach:L` (or `autoattach:*`) attaches to stacks labelled `L` (or to all) in
    /// its space and the spaces below. The read is audited in the same transaction.
    public func resolve(stackID: String, by principal: Principal) async throws -> [RuntimeConfigItem] {
        let resource = "stack:\(stackID)/runtime-config"
        try await access.require(principal, .worker, action: "runtime_config.read", resource: resource, space: nil)
        let (elements, tree, integrity) = (self.elements, self.tree, self.integrity)
        let actor = AuditActor(actor: principal.apiKeyID, actorSpace: principal.space, requestID: principal.requestID,
                               code: audit.code(requestID: principal.requestID, actor: principal.apiKeyID, action: "runtime_config.read", resource: resource))
        // One statement: resolution and audit row together (coffer_runtime_config). What it
        // relied on is checked against the authenticated rows: the stack's row, its space and
        // the chain above it (reach and auto-attachment) against the space tree, each context
        // that gives values and each explicit attachment against its code. A context or an
        // attachment that does not verify is treated as absent: the config is resolved once
        // more without that context (a second audited read).
        guard let rows = try await database.withSession(retryingReadOnly: true, { session -> [RuntimeConfigRow]? in
            var excluded: [UUID] = []
            for _ in 0..<4 {
                guard let result = try await elements.runtimeConfig(stackID: stackID, reachFrom: principal.space, excluding: excluded, by: actor, on: session),
                      integrity.verify(result.stack),
                      try await tree.confirm(chain: result.chain, within: principal.space, on: session) else { return nil }
                let forged = result.attachments.filter { integrity.check($0, of: result.stack.uuid) != .authentic }.map(\.context)
                    + result.contexts.filter { !integrity.verify($0) }.map(\.uuid)
                if forged.isEmpty { return result.rows }
                excluded += forged
            }
            throw CofferError.unavailable("the runtime config of stack `\(stackID)` kept changing while it was read; try again")
        }) else {
            throw Self.notFound(.stack, stackID)
        }
        return try await withFreshKeys {
            try rows.map { row in
                let type = try ConfigElementType.of(row)
                let plaintext = try open(row.sealedValue, place: ConfigValuePlace(
                    ownerID: row.ownerID, configID: row.configID, type: row.type, writeOnly: row.writeOnly, version: row.version))
                return RuntimeConfigItem(id: row.configID, type: type, value: Self.render(plaintext, type: type), writeOnly: row.writeOnly, source: row.source)
            }.sorted { $0.id < $1.id }
        }
    }
}
