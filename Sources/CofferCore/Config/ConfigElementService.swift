import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// The config elements of a stack or context (environment variables and mounted files):
/// each value sealed under the active data key, bound to its owner and id, with every
/// version kept (see `ConfigElementService+History.swift`).
public struct ConfigElementService: ConfigServing {
    let parts: ConfigParts

    init(parts: ConfigParts) {
        self.parts = parts
    }

    /// Sets a config element, sealing its value and keeping the previous one in the
    /// history. Returns the element and whether it is new. Setting exactly what is already
    /// there changes nothing and adds no version. One statement (one round trip) once this
    /// replica knows the owner's UUID: the key-version check, the next history version,
    /// the value, its history row and the audit row are written together.
    public func putElement(
        _ kind: OwnerKind, ownerID: String, configID: String, _ input: ConfigElementInput, by principal: Principal
    ) async throws -> (ConfigElementView, created: Bool) {
        let resource = Self.elementResource(kind, ownerID, configID)
        try await access.require(principal, .write, action: "config.put", resource: resource, space: nil)
        let plaintext = try ConfigValidation.plaintext(of: input, configID: configID)
        try ConfigValidation.checkDescription(input.description)
        let checksum = Hex.encode(SHA256.hash(data: plaintext))
        let (owners, elements, keyring, hints, versions, tree) = (self.owners, self.elements, self.keyring, self.ownerHints, self.versionHints, self.tree)
        let actor = AuditActor(actor: principal.apiKeyID, actorSpace: principal.space, requestID: principal.requestID,
                               code: audit.code(requestID: principal.requestID, actor: principal.apiKeyID, action: "config.put", resource: resource))
        return try await withFreshKeys {
            // The statement decides reach by the SQL; the owner's space must lie in the caller's
            // reach by the authenticated space tree too, before anything is written: the hint's
            // space when this replica knows it and its tree agrees (no round trip), the owner's
            // own, looked up, otherwise.
            @Sendable func confirmedOwner() async throws -> UUID {
                guard let owner = try await database.withSession({ session -> OwnerRecord? in
                    guard let owner = try await owners.find(kind: kind, id: ownerID, reachFrom: principal.space, on: session),
                          tree.integrity.verify(owner),
                          try await tree.confirm(owner.space, within: principal.space, on: session) else { return nil }
                    return owner
                }) else {
                    hints.forget(kind, ownerID)
                    throw Self.notFound(kind, ownerID)
                }
                hints.remember(owner.uuid, space: owner.space, for: kind, ownerID)
                return owner.uuid
            }
            var ownerUUID: UUID?
            if let hint = hints.owner(of: kind, ownerID), tree.isConfirmed(hint.space, within: principal.space) {
                ownerUUID = hint.uuid
            } else {
                ownerUUID = try await confirmedOwner()
            }
            // The owner may be deleted and made anew under the same id between two tries, and
            // other writers may take the version this value was sealed for: after two such
            // misses the write holds the element's lock while it seals (a transaction of a few
            // round trips), so a busy element cannot starve it.
            var misses = 0
            for _ in 0..<5 {
                guard let uuid = ownerUUID else { break }
                let maxElements = limits.maxElementsPerOwner
                @Sendable func write(version: Int32) throws -> (ElementWrite, SealedValue) {
                    let place = ConfigValuePlace(ownerID: uuid, configID: configID, type: input.type.rawValue, writeOnly: input.writeOnly, version: version)
                    let sealed = try keyring.sealConfigValue(plaintext, place: place)
                    return (ElementWrite(
                        kind: kind, ownerID: ownerID, ownerUUID: uuid, configID: configID, type: input.type.rawValue,
                        writeOnly: input.writeOnly, sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion),
                        checksum: checksum, description: input.description, maxElements: maxElements, version: version
                    ), sealed)
                }
                let (outcome, sealed): (ElementWriteOutcome, SealedValue)
                if misses >= 2 {
                    (outcome, sealed) = try await database.transaction { session in
                        // In the order restores take them: the owner's count lock, then the element's.
                        try await elements.lockElementCount(ownerID: uuid, on: session)
                        try await elements.lockElement(ownerID: uuid, configID: configID, on: session)
                        let (write, sealed) = try write(version: try await elements.latestVersion(ownerID: uuid, configID: configID, on: session) + 1)
                        return (try await elements.write(write, reachFrom: principal.space, by: actor, on: session), sealed)
                    }
                } else {
                    let (request, seal) = try write(version: versions.latest(of: uuid, configID) + 1)
                    sealed = seal
                    outcome = try await database.withSession(retryingReadOnly: true) { try await elements.write(request, reachFrom: principal.space, by: actor, on: $0) }
                }
                let stored: (space: String, version: Int32, createdAt: Date, updatedAt: Date, created: Bool)
                switch outcome {
                case .notFound:
                    hints.forget(kind, ownerID)
                    throw Self.notFound(kind, ownerID)
                case .ownerChanged:
                    // Made anew under the same id, perhaps elsewhere: its reach is checked again.
                    ownerUUID = try await confirmedOwner()
                    continue
                case .staleKey:
                    throw StaleKeyring()
                case .tooManyElements:
                    throw Self.tooManyElements(kind, ownerID, limits.maxElementsPerOwner)
                case .versionChanged(let latest):
                    versions.remember(latest, of: uuid, configID)
                    misses += 1
                    continue
                case .unchanged(let space, let version, let createdAt, let updatedAt):
                    stored = (space, version, createdAt, updatedAt, false)
                case .written(let space, let version, let createdAt, let updatedAt, let created):
                    stored = (space, version, createdAt, updatedAt, created)
                }
                // The hint's space comes only from an owner row that verified: one the write
                // reports elsewhere (moved since, or edited in SQL) is looked up next time.
                if hints.owner(of: kind, ownerID)?.space != stored.space { hints.forget(kind, ownerID) }
                versions.remember(stored.version, of: uuid, configID)
                let record = ConfigElementRecord(
                    ownerID: uuid, configID: configID, type: input.type.rawValue, writeOnly: input.writeOnly,
                    sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), checksum: checksum,
                    description: input.description, version: stored.version, author: principal.apiKeyID,
                    createdAt: stored.createdAt, updatedAt: stored.updatedAt
                )
                return (try Self.view(record, value: input.writeOnly ? nil : input.value), stored.created)
            }
            throw CofferError.unavailable("\(kind.rawValue) `\(ownerID)` is being replaced or `\(configID)` is being written by others; retry")
        }
    }

    /// A page of the current elements of a stack or context, by config id: at most `limit`,
    /// and no more than ``CofferLimits/maxPageBytes`` of stored values (a page that would
    /// read more ends early, with a cursor). Write-only values are neither read nor opened.
    public func listElements(
        _ kind: OwnerKind, ownerID: String, limit: Int = 500, cursor: String? = nil, by principal: Principal
    ) async throws -> Page<ConfigElementView> {
        try principal.require(.read)
        let after = try Pagination.key(of: cursor)
        let (owners, elements, maxBytes) = (self.owners, self.elements, limits.maxPageBytes)
        let (owner, page) = try await database.withSession { session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, tree: tree, on: session)
            return (owner, try await elements.elements(ownerID: owner.uuid, after: after, limit: limit, maxBytes: maxBytes, on: session))
        }
        return try await withFreshKeys {
            try Page(items: page.rows, more: page.more, key: \.configID).map { row in
                try Self.view(row, value: row.writeOnly ? nil : try render(row, owner: owner.uuid))
            }
        }
    }

    /// One current element; a write-only value is withheld.
    public func element(_ kind: OwnerKind, ownerID: String, configID: String, by principal: Principal) async throws -> ConfigElementView {
        try principal.require(.read)
        let (elements, tree) = (self.elements, self.tree)
        let found = try await database.withSession { session -> (owner: OwnerRecord, element: ConfigElementRecord?)? in
            guard let found = try await elements.findInReach(kind: kind.rawValue, ownerID: ownerID, configID: configID, reachFrom: principal.space, on: session),
                  tree.integrity.verify(found.owner),
                  try await tree.confirm(found.owner.space, within: principal.space, on: session) else { return nil }
            return found
        }
        guard let found else { throw Self.notFound(kind, ownerID) }
        guard let row = found.element else {
            throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`")
        }
        return try await withFreshKeys {
            try Self.view(row, value: row.writeOnly ? nil : try render(row, owner: found.owner.uuid))
        }
    }

    /// Deletes an element's current value; its history stays and can be restored.
    public func deleteElement(_ kind: OwnerKind, ownerID: String, configID: String, by principal: Principal) async throws {
        let resource = Self.elementResource(kind, ownerID, configID)
        try await access.require(principal, .write, action: "config.delete", resource: resource, space: nil)
        let (owners, elements, audit) = (self.owners, self.elements, self.audit)
        try await database.transaction { session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, tree: tree, on: session)
            try await elements.lockElement(ownerID: owner.uuid, configID: configID, on: session)
            guard try await elements.delete(ownerID: owner.uuid, configID: configID, on: session) else {
                throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`")
            }
            try await audit.record("config.delete", resource: resource, space: owner.space, by: principal, on: session)
        }
    }
}
