import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Stacks and contexts: create, read, list, change and delete them within the caller's
/// space subtree; a change is audited in its own transaction.
public struct OwnerService: ConfigServing {
    let parts: ConfigParts

    init(parts: ConfigParts) {
        self.parts = parts
    }

    /// Creates a stack or context in a space the caller reaches.
    public func createOwner(_ kind: OwnerKind, _ input: OwnerInput, by principal: Principal) async throws -> OwnerRecord {
        let resource = "\(kind.rawValue):\(input.id)"
        try await access.require(principal, .write, action: "\(kind.rawValue).create", resource: resource, space: input.space)
        try ConfigValidation.checkSlug(input.id, what: "a \(kind.rawValue) id")
        let name = try ConfigValidation.checkName(input.name, what: "a \(kind.rawValue)")
        try ConfigValidation.checkDescription(input.description)
        try ConfigValidation.checkLabels(input.labels)
        let (owners, audit, integrity) = (self.owners, self.audit, self.integrity)
        do {
            return try await withFreshKeys {
                let record = try integrity.seal(OwnerRecord(kind: kind, id: input.id, name: name, space: input.space, labels: input.labels, description: input.description))
                try await database.transaction { session in
                    let reach = try await tree.reach(of: principal.space, on: session)
                    guard reach.contains(input.space) else {
                        throw CofferError.unknownSpace("space `\(input.space)` does not exist")
                    }
                    try await integrity.confirmActive(record.macVersion, on: session)
                    try await owners.insert(record, on: session)
                    try await audit.record("\(kind.rawValue).create", resource: resource, space: input.space, by: principal, on: session)
                }
                return record
            }
        } catch let error as StoreError where error.code == .conflict {
            throw CofferError.conflict("a \(kind.rawValue) with id `\(input.id)` already exists")
        }
    }

    /// A stack or context the caller reaches.
    public func owner(_ kind: OwnerKind, id: String, by principal: Principal) async throws -> OwnerRecord {
        try principal.require(.metadata)
        let owners = self.owners
        return try await database.withSession { session in
            try await Self.findOwner(kind, id: id, principal: principal, owners: owners, tree: tree, on: session)
        }
    }

    /// A page of the stacks or contexts the caller reaches, ordered by id.
    public func listOwners(_ kind: OwnerKind, limit: Int, cursor: String?, by principal: Principal) async throws -> Page<OwnerRecord> {
        try principal.require(.metadata)
        let after = try Pagination.key(of: cursor)
        let owners = self.owners
        let rows = try await database.withSession { session in
            let reach = try await tree.reach(of: principal.space, on: session)
            return try await owners.list(kind: kind, spaces: reach, after: after, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        // A row that does not verify is not shown; the cursor still moves past it.
        let page = Page(rows: rows, limit: limit, key: { $0.id })
        return Page(items: page.items.filter { integrity.verify($0) }, nextCursor: page.nextCursor)
    }

    /// Changes name, labels, description or space of a stack or context. A move stays
    /// within the caller's reach and keeps every explicit attachment valid: a stack's
    /// contexts must lie in its new space or above it, a context's stacks below it.
    public func updateOwner(_ kind: OwnerKind, id: String, _ patch: OwnerPatch, by principal: Principal) async throws -> OwnerRecord {
        let resource = "\(kind.rawValue):\(id)"
        try await access.require(principal, .write, action: "\(kind.rawValue).update", resource: resource, space: nil)
        let name = try patch.name.map { try ConfigValidation.checkName($0, what: "a \(kind.rawValue)") }
        if let description = patch.description { try ConfigValidation.checkDescription(description) }
        if let labels = patch.labels { try ConfigValidation.checkLabels(labels) }
        let (owners, spaces, attachments, audit, integrity) = (self.owners, self.spaces, self.attachments, self.audit, self.integrity)
        return try await withFreshKeys { try await database.transaction { session in
            var owner = try await Self.findOwner(kind, id: id, principal: principal, owners: owners, tree: tree, on: session)
            var detail = ""
            if let target = patch.space, target != owner.space {
                let reach = try await tree.reach(of: principal.space, on: session)
                guard reach.contains(target) else {
                    throw CofferError.unknownSpace("space `\(target)` does not exist")
                }
                switch kind {
                case .stack:
                    let above = try await spaces.ancestry(of: target, on: session)
                    if let stranded = try await attachments.attachments(of: owner.uuid, on: session).first(where: { !above.contains($0.contextSpace) }) {
                        throw CofferError.conflict("attached context `\(stranded.contextID)` would lie outside space `\(target)` and its parents; detach it first")
                    }
                case .context:
                    let below = try await owners.spaceSubtree(of: target, on: session)
                    if let stranded = try await owners.stacksAttached(to: owner.uuid, on: session).first(where: { !below.contains($0.space) }) {
                        throw CofferError.conflict("attached stack `\(stranded.id)` would lie outside space `\(target)` and its descendants; detach it first")
                    }
                }
                detail = "space=\(owner.space)->\(target)"
                owner.space = target
            }
            if let name { owner.name = name }
            if let labels = patch.labels { owner.labels = labels }
            if let description = patch.description { owner.description = description }
            owner.updatedAt = Date()
            owner = try integrity.seal(owner)
            try await integrity.confirmActive(owner.macVersion, on: session)
            try await owners.update(owner, on: session)
            try await audit.record("\(kind.rawValue).update", resource: resource, space: owner.space, by: principal, detail: detail, on: session)
            return owner
        } }
    }

    /// Deletes a stack or context with its elements, their history and its attachments.
    public func deleteOwner(_ kind: OwnerKind, id: String, by principal: Principal) async throws {
        let resource = "\(kind.rawValue):\(id)"
        try await access.require(principal, .write, action: "\(kind.rawValue).delete", resource: resource, space: nil)
        let (owners, audit) = (self.owners, self.audit)
        try await database.transaction { session in
            let owner = try await Self.findOwner(kind, id: id, principal: principal, owners: owners, tree: tree, on: session)
            _ = try await owners.delete(kind: kind, id: id, spaces: [owner.space], on: session)
            try await audit.record("\(kind.rawValue).delete", resource: resource, space: owner.space, by: principal, on: session)
        }
    }
}
