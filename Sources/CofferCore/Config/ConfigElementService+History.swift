import CofferCrypto
import CofferStore
import Foundation

/// Config element history: every version kept sealed, listed, and restorable.
extension ConfigElementService {
    /// A page of an element's versions, newest first, bounded by ``CofferLimits/maxPageBytes``
    /// of stored values as ``listElements(_:ownerID:limit:cursor:by:)`` is. Write-only
    /// versions show no value, and theirs is not read.
    public func versions(
        _ kind: OwnerKind, ownerID: String, configID: String, limit: Int, cursor: String?, by principal: Principal
    ) async throws -> Page<ConfigVersionView> {
        try principal.require(.read)
        let before = try Pagination.key(of: cursor) { Int32($0) }
        let (owners, elements, maxBytes) = (self.owners, self.elements, limits.maxPageBytes)
        let (owner, rows) = try await database.withSession { [before] session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, tree: tree, on: session)
            guard try await elements.latestVersion(ownerID: owner.uuid, configID: configID, on: session) > 0 else {
                throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`")
            }
            return (owner, try await elements.versions(ownerID: owner.uuid, configID: configID, before: before, limit: limit, maxBytes: maxBytes, on: session))
        }
        let page = Page(items: rows.rows, more: rows.more, key: { String($0.version) })
        return try await withFreshKeys { try page.map { row in
            ConfigVersionView(
                version: Int(row.version), type: try ConfigElementType.of(row),
                value: row.writeOnly ? nil : try render(row, owner: owner.uuid), writeOnly: row.writeOnly,
                checksum: row.checksum, description: row.description, author: row.author, createdAt: row.createdAt
            )
        } }
    }

    /// Makes version `number` current again, as a new version (history only grows). The
    /// value is re-sealed under the active data key.
    public func restore(
        _ kind: OwnerKind, ownerID: String, configID: String, version number: Int, by principal: Principal
    ) async throws -> ConfigElementView {
        let resource = Self.elementResource(kind, ownerID, configID)
        try await access.require(principal, .write, action: "config.restore", resource: resource, space: nil)
        guard let number = Int32(exactly: number), number > 0 else {
            throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no version \(number) of `\(configID)`")
        }
        let (owners, elements, keyring, audit, lifecycle) = (self.owners, self.elements, self.keyring, self.audit, self.lifecycle)
        let maxElements = limits.maxElementsPerOwner
        return try await withFreshKeys { try await self.database.transaction { session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, tree: tree, on: session)
            // Restoring a deleted element creates it again: it counts against the bound. The
            // count lock comes before the element lock, in the order writes take them.
            try await elements.lockElementCount(ownerID: owner.uuid, on: session)
            try await elements.lockElement(ownerID: owner.uuid, configID: configID, on: session)
            guard let old = try await elements.version(ownerID: owner.uuid, configID: configID, version: number, on: session) else {
                throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no version \(number) of `\(configID)`")
            }
            let current = try await elements.find(ownerID: owner.uuid, configID: configID, on: session)
            if current == nil, try await elements.count(ownerID: owner.uuid, on: session) >= maxElements {
                throw Self.tooManyElements(kind, ownerID, maxElements)
            }
            let version = try await elements.latestVersion(ownerID: owner.uuid, configID: configID, on: session) + 1
            let plaintext = try self.open(old.sealedValue, place: ConfigValuePlace(
                ownerID: owner.uuid, configID: configID, type: old.type, writeOnly: old.writeOnly, version: old.version))
            let sealed = try keyring.sealConfigValue(plaintext, place: ConfigValuePlace(
                ownerID: owner.uuid, configID: configID, type: old.type, writeOnly: old.writeOnly, version: version))
            try await lifecycle?.confirmActive(.database, version: sealed.keyVersion, on: session)
            let now = Date()
            let record = ConfigElementRecord(
                ownerID: owner.uuid, configID: configID, type: old.type, writeOnly: old.writeOnly,
                sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), checksum: old.checksum,
                description: old.description, version: version, author: principal.apiKeyID,
                createdAt: current?.createdAt ?? now, updatedAt: now
            )
            try await elements.upsert(record, on: session)
            try await elements.insertVersion(record, on: session)
            try await audit.record("config.restore", resource: resource, space: owner.space, by: principal,
                                   detail: "from=\(number) version=\(version)", on: session)
            let type = try ConfigElementType.of(record)
            return try Self.view(record, value: record.writeOnly ? nil : Self.render(plaintext, type: type))
        } }
    }
}
