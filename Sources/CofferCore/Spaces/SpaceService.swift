import CofferStore
import Foundation
import Logging

/// What a caller sends to create a space.
public struct SpaceInput: Sendable {
    public var id: String
    public var name: String
    public var parent: String
    public var description: String

    public init(id: String, name: String, parent: String, description: String) {
        self.id = id
        self.name = name
        self.parent = parent
        self.description = description
    }
}

/// A change to a space; nil fields stay as they are.
public struct SpacePatch: Sendable {
    public var name: String?
    public var parent: String?
    public var description: String?

    public init(name: String? = nil, parent: String? = nil, description: String? = nil) {
        self.name = name
        self.parent = parent
        self.description = description
    }
}

/// Spaces: a tree under `root`. An `admin` manages the spaces of its subtree; it may
/// rename its own space but not move or delete it. Outside the caller's reach a space
/// does not exist (404).
public struct SpaceService: Sendable {
    private let database: Database
    private let spaces: SpaceRepository
    private let owners: OwnerRepository
    private let attachments: AttachmentRepository
    private let audit: AuditLog
    private let access: AccessControl
    /// Reach by authenticated space rows; each space written gets its code from it.
    private let tree: SpaceTree
    /// Reloads the keyring when a write met an integrity key another replica retired.
    private let lifecycle: KeyLifecycle?

    public init(database: Database, audit: AuditLog, tree: SpaceTree, lifecycle: KeyLifecycle? = nil, logger: Logger) {
        self.tree = tree
        self.lifecycle = lifecycle
        self.database = database
        self.spaces = SpaceRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.attachments = AttachmentRepository(logger: logger)
        self.audit = audit
        self.access = AccessControl(audit: audit)
    }

    public func create(_ input: SpaceInput, by principal: Principal) async throws -> SpaceRecord {
        try await access.require(principal, .admin, action: "space.create", resource: "space:\(input.id)", space: input.parent)
        try ConfigValidation.checkSlug(input.id, what: "a space id")
        let name = try ConfigValidation.checkName(input.name, what: "a space")
        try ConfigValidation.checkDescription(input.description)
        let (spaces, tree, audit) = (self.spaces, self.tree, self.audit)
        do {
            return try await KeyLifecycle.withFreshKeys(lifecycle) {
                let record = try tree.integrity.seal(SpaceRecord(id: input.id, name: name, parent: input.parent, description: input.description))
                try await self.database.transaction { session in
                    try await spaces.lockTree(on: session)
                    let reach = try await tree.reach(of: principal.space, on: session)
                    guard reach.contains(input.parent) else {
                        throw CofferError.unknownSpace("parent space `\(input.parent)` does not exist")
                    }
                    try await tree.integrity.confirmActive(record.macVersion, on: session)
                    try await spaces.insert(record, on: session)
                    try await audit.record("space.create", resource: "space:\(input.id)", space: input.id, by: principal, on: session)
                }
                return record
            }
        } catch let error as StoreError where error.code == .conflict {
            throw CofferError.conflict("a space with id `\(input.id)` already exists")
        }
    }

    public func space(id: String, by principal: Principal) async throws -> SpaceRecord {
        try await access.require(principal, .admin, action: "space.read", resource: "space:\(id)", space: nil)
        let (spaces, tree) = (self.spaces, self.tree)
        return try await database.withSession { session in
            let reach = try await tree.reach(of: principal.space, on: session)
            guard reach.contains(id), let space = try await spaces.find(id: id, on: session) else { throw Self.notFound(id) }
            return space
        }
    }

    public func list(limit: Int, cursor: String?, by principal: Principal) async throws -> Page<SpaceRecord> {
        try await access.require(principal, .admin, action: "space.list", resource: "space:*", space: nil)
        let after = try Pagination.key(of: cursor)
        let (spaces, tree) = (self.spaces, self.tree)
        let rows = try await database.withSession { session in
            let reach = try await tree.reach(of: principal.space, on: session)
            return try await spaces.list(ids: reach, after: after, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        return Page(rows: rows, limit: limit, key: { $0.id })
    }

    public func update(id: String, _ patch: SpacePatch, by principal: Principal) async throws -> SpaceRecord {
        try await access.require(principal, .admin, action: "space.update", resource: "space:\(id)", space: id)
        let name = try patch.name.map { try ConfigValidation.checkName($0, what: "a space") }
        if let description = patch.description { try ConfigValidation.checkDescription(description) }
        let (spaces, owners, attachments, audit, tree) = (self.spaces, self.owners, self.attachments, self.audit, self.tree)
        return try await KeyLifecycle.withFreshKeys(lifecycle) { try await self.database.transaction { session in
            try await spaces.lockTree(on: session)
            let reach = try await tree.reach(of: principal.space, on: session)
            guard reach.contains(id), var space = try await spaces.find(id: id, on: session) else { throw Self.notFound(id) }
            if let parent = patch.parent, parent != space.parent {
                guard id != "root", id != principal.space else {
                    throw CofferError.cannotMoveSpace("space `\(id)` cannot be moved by a key bound to it")
                }
                guard reach.contains(parent) else {
                    throw CofferError.unknownSpace("parent space `\(parent)` does not exist")
                }
                guard try await !owners.spaceSubtree(of: id, on: session).contains(parent) else {
                    throw CofferError.spaceCycle("space `\(parent)` lies inside `\(id)`; a space cannot move under itself")
                }
                space.parent = parent
            }
            if let name { space.name = name }
            if let description = patch.description { space.description = description }
            space.updatedAt = Date()
            space = try tree.integrity.seal(space)
            try await tree.integrity.confirmActive(space.macVersion, on: session)
            try await spaces.update(space, on: session)
            // A move keeps every explicit attachment valid, as moving a stack does: a context
            // must stay in its stack's space or above it (the transaction rolls back).
            if patch.parent != nil, let stranded = try await attachments.strandedAttachment(on: session) {
                throw CofferError.conflict("moving space `\(id)` would leave context `\(stranded.context)` attached to stack `\(stranded.stack)` from outside its space and the spaces above it; detach it first")
            }
            try await audit.record("space.update", resource: "space:\(id)", space: id, by: principal, on: session)
            return space
        } }
    }

    /// Deletes an empty space: no child spaces, stacks, contexts, live API keys or KMS keys.
    public func delete(id: String, by principal: Principal) async throws {
        try await access.require(principal, .admin, action: "space.delete", resource: "space:\(id)", space: id)
        let (spaces, tree, audit) = (self.spaces, self.tree, self.audit)
        try await database.transaction { session in
            try await spaces.lockTree(on: session)
            let reach = try await tree.reach(of: principal.space, on: session)
            guard reach.contains(id), try await spaces.find(id: id, on: session) != nil else { throw Self.notFound(id) }
            guard id != "root", id != principal.space else {
                throw CofferError.cannotDeleteSpace("space `\(id)` cannot be deleted by a key bound to it")
            }
            let contents = try await spaces.contents(of: id, on: session)
            guard contents.isEmpty else {
                throw CofferError.conflict("space `\(id)` still holds \(contents.children) space(s), \(contents.stacks) stack(s), \(contents.contexts) context(s), \(contents.liveAPIKeys) live API key(s) and \(contents.kmsKeys) KMS key(s)")
            }
            _ = try await spaces.delete(id: id, on: session)
            try await audit.record("space.delete", resource: "space:\(id)", space: id, by: principal, on: session)
        }
    }

    static func notFound(_ id: String) -> CofferError {
        CofferError.notFound("space `\(id)` not found")
    }
}
