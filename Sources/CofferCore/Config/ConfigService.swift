import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Stacks, contexts, their config elements (with history) and attachments, and the
/// runtime config of a stack. Every call takes the caller's principal: roles are checked
/// here, a resource outside the caller's space subtree is reported as not found, and every
/// change (and every runtime-config read) is audited in its own transaction.
public struct ConfigService: Sendable {
    let database: Database
    let keyring: Keyring
    let owners: OwnerRepository
    let spaces: SpaceRepository
    let elements: ConfigElementRepository
    let attachments: AttachmentRepository
    let audit: AuditLog
    let access: AccessControl
    /// Owner UUIDs for writes (verified by every write's statement).
    let ownerHints = OwnerUUIDHints()
    /// Confirms inside each write that the sealing key is still active, and reloads the
    /// keyring when another process rotated it. Nil in tests of the service alone.
    let lifecycle: KeyLifecycle?
    let logger: Logger

    public init(database: Database, keyring: Keyring, lifecycle: KeyLifecycle? = nil, logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.lifecycle = lifecycle
        self.owners = OwnerRepository(logger: logger)
        self.spaces = SpaceRepository(logger: logger)
        self.elements = ConfigElementRepository(logger: logger)
        self.attachments = AttachmentRepository(logger: logger)
        self.audit = AuditLog(database: database, logger: logger)
        self.access = AccessControl(audit: audit)
        self.logger = logger
    }

    // MARK: Stacks and contexts

    /// Creates a stack or context in a space the caller reaches.
    public func createOwner(_ kind: OwnerKind, _ input: OwnerInput, by principal: Principal) async throws -> OwnerRecord {
        let resource = "\(kind.rawValue):\(input.id)"
        try await access.require(principal, .write, action: "\(kind.rawValue).create", resource: resource, space: input.space)
        try ConfigValidation.checkSlug(input.id, what: "a \(kind.rawValue) id")
        let name = try ConfigValidation.checkName(input.name, what: "a \(kind.rawValue)")
        try ConfigValidation.checkDescription(input.description)
        try ConfigValidation.checkLabels(input.labels)
        let record = OwnerRecord(kind: kind, id: input.id, name: name, space: input.space, labels: input.labels, description: input.description)
        let (owners, audit) = (self.owners, self.audit)
        do {
            try await database.transaction { session in
                let reach = try await owners.spaceSubtree(of: principal.space, on: session)
                guard reach.contains(input.space) else {
                    throw CofferError.unknownSpace("space `\(input.space)` does not exist")
                }
                try await owners.insert(record, on: session)
                try await audit.record("\(kind.rawValue).create", resource: resource, space: input.space, by: principal, on: session)
            }
        } catch let error as StoreError where error.code == .conflict {
            throw CofferError.conflict("a \(kind.rawValue) with id `\(input.id)` already exists")
        }
        return record
    }

    /// A stack or context the caller reaches.
    public func owner(_ kind: OwnerKind, id: String, by principal: Principal) async throws -> OwnerRecord {
        try principal.require(.metadata)
        let owners = self.owners
        return try await database.withSession { session in
            try await Self.findOwner(kind, id: id, principal: principal, owners: owners, on: session)
        }
    }

    /// A page of the stacks or contexts the caller reaches, ordered by id.
    public func listOwners(_ kind: OwnerKind, limit: Int, cursor: String?, by principal: Principal) async throws -> Page<OwnerRecord> {
        try principal.require(.metadata)
        let after = try Pagination.key(of: cursor)
        let owners = self.owners
        let rows = try await database.withSession { session in
            let reach = try await owners.spaceSubtree(of: principal.space, on: session)
            return try await owners.list(kind: kind, spaces: reach, after: after, limit: Pagination.rowsToRead(for: limit), on: session)
        }
        return Page(rows: rows, limit: limit, key: { $0.id })
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
        let (owners, spaces, attachments, audit) = (self.owners, self.spaces, self.attachments, self.audit)
        return try await database.transaction { session in
            var owner = try await Self.findOwner(kind, id: id, principal: principal, owners: owners, on: session)
            var detail = ""
            if let target = patch.space, target != owner.space {
                let reach = try await owners.spaceSubtree(of: principal.space, on: session)
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
            try await owners.update(owner, on: session)
            try await audit.record("\(kind.rawValue).update", resource: resource, space: owner.space, by: principal, detail: detail, on: session)
            return owner
        }
    }

    /// Deletes a stack or context with its elements, their history and its attachments.
    public func deleteOwner(_ kind: OwnerKind, id: String, by principal: Principal) async throws {
        let resource = "\(kind.rawValue):\(id)"
        try await access.require(principal, .write, action: "\(kind.rawValue).delete", resource: resource, space: nil)
        let (owners, audit) = (self.owners, self.audit)
        try await database.transaction { session in
            let owner = try await Self.findOwner(kind, id: id, principal: principal, owners: owners, on: session)
            _ = try await owners.delete(kind: kind, id: id, spaces: [owner.space], on: session)
            try await audit.record("\(kind.rawValue).delete", resource: resource, space: owner.space, by: principal, on: session)
        }
    }

    // MARK: Config elements

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
        let (owners, elements, keyring, hints) = (self.owners, self.elements, self.keyring, self.ownerHints)
        let actor = AuditActor(actor: principal.apiKeyID, actorSpace: principal.space, requestID: principal.requestID)
        return try await withFreshKeys {
            var ownerUUID = hints.uuid(of: kind, ownerID)
            if ownerUUID == nil {
                guard let owner = try await database.withSession({ try await owners.find(kind: kind, id: ownerID, reachFrom: principal.space, on: $0) }) else {
                    throw Self.notFound(kind, ownerID)
                }
                ownerUUID = owner.uuid
            }
            // The owner may be deleted and made anew under the same id between two tries.
            for _ in 0..<3 {
                guard let uuid = ownerUUID else { break }
                let sealed = try keyring.seal(plaintext, purpose: .database, associatedData: AssociatedData.configValue(ownerID: uuid, configID: configID))
                let write = ElementWrite(
                    kind: kind, ownerID: ownerID, ownerUUID: uuid, configID: configID, type: input.type.rawValue,
                    writeOnly: input.writeOnly, sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion),
                    checksum: checksum, description: input.description
                )
                let outcome = try await database.withSession(retryingReadOnly: true) { try await elements.write(write, reachFrom: principal.space, by: actor, on: $0) }
                let stored: (version: Int32, createdAt: Date, updatedAt: Date, created: Bool)
                switch outcome {
                case .notFound:
                    hints.forget(kind, ownerID)
                    throw Self.notFound(kind, ownerID)
                case .ownerChanged(let current):
                    hints.remember(current, for: kind, ownerID)
                    ownerUUID = current
                    continue
                case .staleKey:
                    throw StaleKeyring()
                case .unchanged(_, let version, let createdAt, let updatedAt):
                    stored = (version, createdAt, updatedAt, false)
                case .written(_, let version, let createdAt, let updatedAt, let created):
                    stored = (version, createdAt, updatedAt, created)
                }
                hints.remember(uuid, for: kind, ownerID)
                let record = ConfigElementRecord(
                    ownerID: uuid, configID: configID, type: input.type.rawValue, writeOnly: input.writeOnly,
                    sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), checksum: checksum,
                    description: input.description, version: stored.version, author: principal.apiKeyID,
                    createdAt: stored.createdAt, updatedAt: stored.updatedAt
                )
                return (Self.view(record, value: input.writeOnly ? nil : input.value), stored.created)
            }
            throw CofferError.unavailable("\(kind.rawValue) `\(ownerID)` is being replaced; retry")
        }
    }

    /// The current elements of a stack or context; write-only values are withheld.
    public func listElements(_ kind: OwnerKind, ownerID: String, by principal: Principal) async throws -> [ConfigElementView] {
        try principal.require(.read)
        let (owners, elements) = (self.owners, self.elements)
        let (owner, rows) = try await database.withSession { session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, on: session)
            return (owner, try await elements.elements(of: [owner.uuid], on: session))
        }
        return try await withFreshKeys {
            try rows.map { row in Self.view(row, value: row.writeOnly ? nil : try render(row, owner: owner.uuid)) }
        }
    }

    /// One current element; a write-only value is withheld.
    public func element(_ kind: OwnerKind, ownerID: String, configID: String, by principal: Principal) async throws -> ConfigElementView {
        try principal.require(.read)
        let elements = self.elements
        let found = try await database.withSession { session in
            try await elements.findInReach(kind: kind.rawValue, ownerID: ownerID, configID: configID, reachFrom: principal.space, on: session)
        }
        guard let found else { throw Self.notFound(kind, ownerID) }
        guard let row = found.element else {
            throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`")
        }
        return try await withFreshKeys {
            Self.view(row, value: row.writeOnly ? nil : try render(row, owner: found.owner))
        }
    }

    /// Deletes an element's current value; its history stays and can be restored.
    public func deleteElement(_ kind: OwnerKind, ownerID: String, configID: String, by principal: Principal) async throws {
        let resource = Self.elementResource(kind, ownerID, configID)
        try await access.require(principal, .write, action: "config.delete", resource: resource, space: nil)
        let (owners, elements, audit) = (self.owners, self.elements, self.audit)
        try await database.transaction { session in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, on: session)
            try await elements.lockElement(ownerID: owner.uuid, configID: configID, on: session)
            guard try await elements.delete(ownerID: owner.uuid, configID: configID, on: session) else {
                throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`")
            }
            try await audit.record("config.delete", resource: resource, space: owner.space, by: principal, on: session)
        }
    }

    // MARK: Attachments

    /// Attaches a context to a stack with a priority (0 is the highest), or changes it.
    /// The context must lie in the stack's space or one of its parents.
    public func attach(stackID: String, contextID: String, priority: Int, by principal: Principal) async throws {
        let resource = "stack:\(stackID)/contexts/\(contextID)"
        try await access.require(principal, .write, action: "attachment.put", resource: resource, space: nil)
        guard (0...1_000_000).contains(priority) else {
            throw CofferError.invalidPriority("priority must be an integer from 0 to 1000000")
        }
        let (owners, spaces, attachments, audit) = (self.owners, self.spaces, self.attachments, self.audit)
        try await database.transaction { session in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, on: session)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, on: session)
            guard try await spaces.ancestry(of: stack.space, on: session).contains(context.space) else {
                throw CofferError.contextOutOfReach("context `\(contextID)` (space `\(context.space)`) is not in the space of stack `\(stackID)` or above it")
            }
            try await attachments.attach(stack: stack.uuid, context: context.uuid, priority: Int32(priority), on: session)
            try await audit.record("attachment.put", resource: resource, space: stack.space, by: principal, detail: "priority=\(priority)", on: session)
        }
    }

    /// Detaches a context from a stack.
    public func detach(stackID: String, contextID: String, by principal: Principal) async throws {
        let resource = "stack:\(stackID)/contexts/\(contextID)"
        try await access.require(principal, .write, action: "attachment.delete", resource: resource, space: nil)
        let (owners, attachments, audit) = (self.owners, self.attachments, self.audit)
        try await database.transaction { session in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, on: session)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, on: session)
            guard try await attachments.detach(stack: stack.uuid, context: context.uuid, on: session) else {
                throw CofferError.notFound("context `\(contextID)` is not attached to stack `\(stackID)`")
            }
            try await audit.record("attachment.delete", resource: resource, space: stack.space, by: principal, on: session)
        }
    }

    // MARK: Runtime config

    /// The resolved elements of a stack with every value decrypted (CONTRACT §3): the
    /// stack's own elements win; then explicitly attached contexts by ascending priority,
    /// ties by context id; then auto-attached contexts by id. A context labelled
    /// `autoattach:L` (or `autoattach:*`) attaches to stacks labelled `L` (or to all) in
    /// its space and the spaces below. The read is audited in the same transaction.
    public func runtimeConfig(stackID: String, by principal: Principal) async throws -> [RuntimeConfigItem] {
        let resource = "stack:\(stackID)/runtime-config"
        try await access.require(principal, .worker, action: "runtime_config.read", resource: resource, space: nil)
        let elements = self.elements
        let actor = AuditActor(actor: principal.apiKeyID, actorSpace: principal.space, requestID: principal.requestID)
        // One statement: resolution and audit row together (coffer_runtime_config).
        guard let (_, rows) = try await database.withSession(retryingReadOnly: true, {
            try await elements.runtimeConfig(stackID: stackID, reachFrom: principal.space, by: actor, on: $0)
        }) else {
            throw Self.notFound(.stack, stackID)
        }
        return try await withFreshKeys {
            try rows.map { row in
                let type = ConfigElementType(rawValue: row.type) ?? .environmentVariable
                let plaintext = try keyring.open(
                    try SealedValue(bytes: row.sealedValue), purpose: .database,
                    associatedData: AssociatedData.configValue(ownerID: row.ownerID, configID: row.configID)
                )
                return RuntimeConfigItem(id: row.configID, type: type, value: Self.render(plaintext, type: type), writeOnly: row.writeOnly, source: row.source)
            }.sorted { $0.id < $1.id }
        }
    }

    // MARK: Helpers

    /// Runs a read or write again with freshly loaded keys (``KeyLifecycle/withFreshKeys(_:_:)``).
    func withFreshKeys<T: Sendable>(_ write: () async throws -> T) async throws -> T {
        try await KeyLifecycle.withFreshKeys(lifecycle, write)
    }

    func render(_ row: ConfigElementRecord, owner: UUID) throws -> String {
        let sealed = try SealedValue(bytes: row.sealedValue)
        let plaintext = try keyring.open(sealed, purpose: .database, associatedData: AssociatedData.configValue(ownerID: owner, configID: row.configID))
        return Self.render(plaintext, type: ConfigElementType(rawValue: row.type) ?? .environmentVariable)
    }

    static func render(_ plaintext: [UInt8], type: ConfigElementType) -> String {
        switch type {
        case .environmentVariable: return String(decoding: plaintext, as: UTF8.self)
        case .fileMount: return Data(plaintext).base64EncodedString()
        }
    }

    static func view(_ row: ConfigElementRecord, value: String?) -> ConfigElementView {
        ConfigElementView(
            id: row.configID, type: ConfigElementType(rawValue: row.type) ?? .environmentVariable, value: value,
            writeOnly: row.writeOnly, checksum: row.checksum, description: row.description, version: Int(row.version),
            createdAt: row.createdAt, updatedAt: row.updatedAt
        )
    }

    static func elementResource(_ kind: OwnerKind, _ ownerID: String, _ configID: String) -> String {
        "\(kind.rawValue):\(ownerID)/config/\(configID)"
    }

    static func findOwner(
        _ kind: OwnerKind, id: String, principal: Principal, owners: OwnerRepository, on session: StoreSession
    ) async throws -> OwnerRecord {
        guard let owner = try await owners.find(kind: kind, id: id, reachFrom: principal.space, on: session) else {
            throw notFound(kind, id)
        }
        return owner
    }

    static func notFound(_ kind: OwnerKind, _ id: String) -> CofferError {
        CofferError.notFound("\(kind.rawValue) `\(id)` not found")
    }
}
