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
        let elements = self.elements
        let actor = AuditActor(actor: principal.apiKeyID, actorSpace: principal.space, requestID: principal.requestID,
                               code: audit.code(requestID: principal.requestID, actor: principal.apiKeyID, action: "runtime_config.read", resource: resource))
        // One statement: resolution and audit row together (coffer_runtime_config).
        guard let (_, rows) = try await database.withSession(retryingReadOnly: true, {
            try await elements.runtimeConfig(stackID: stackID, reachFrom: principal.space, by: actor, on: $0)
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
