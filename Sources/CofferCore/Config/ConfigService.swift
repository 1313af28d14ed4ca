import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// Stacks, contexts, their config elements and attachments, and the runtime config of a
/// stack. Every call takes the caller's principal: roles are checked here, and a
/// resource outside the caller's space subtree is reported as not found.
public struct ConfigService: Sendable {
    private let database: Database
    private let keyring: Keyring
    private let owners: OwnerRepository
    private let elements: ConfigElementRepository
    private let attachments: AttachmentRepository
    private let logger: Logger

    public init(database: Database, keyring: Keyring, logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.owners = OwnerRepository(logger: logger)
        self.elements = ConfigElementRepository(logger: logger)
        self.attachments = AttachmentRepository(logger: logger)
        self.logger = logger
    }

    // MARK: Stacks and contexts

    /// Creates a stack or context in a space the caller reaches.
    public func createOwner(_ kind: OwnerKind, _ input: OwnerInput, by principal: Principal) async throws -> OwnerRecord {
        try principal.require(.write)
        try ConfigValidation.checkSlug(input.id, what: "a \(kind.rawValue) id")
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200 else { throw CofferError.invalidInput("a \(kind.rawValue) needs a name of 1 to 200 characters") }
        guard input.description.count <= 10_000 else { throw CofferError.invalidInput("a description may be at most 10,000 characters") }
        try ConfigValidation.checkLabels(input.labels)
        let record = OwnerRecord(kind: kind, id: input.id, name: name, space: input.space, labels: input.labels, description: input.description)
        let owners = self.owners
        do {
            try await database.transaction { connection in
                let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
                guard reach.contains(input.space) else {
                    throw CofferError.unprocessable("space `\(input.space)` does not exist", code: "unknown_space")
                }
                try await owners.insert(record, on: connection)
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
        return try await database.withConnection { connection in
            try await Self.findOwner(kind, id: id, principal: principal, owners: owners, on: connection)
        }
    }

    /// A page of the stacks or contexts the caller reaches, ordered by id.
    public func listOwners(_ kind: OwnerKind, limit: Int, cursor: String?, by principal: Principal) async throws -> Page<OwnerRecord> {
        try principal.require(.metadata)
        let after = try ConfigValidation.decodeCursor(cursor)
        let owners = self.owners
        let rows = try await database.withConnection { connection in
            let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
            return try await owners.list(kind: kind, spaces: reach, after: after, limit: limit + 1, on: connection)
        }
        let items = Array(rows.prefix(limit))
        return Page(items: items, nextCursor: rows.count > limit ? items.last.map { ConfigValidation.encodeCursor($0.id) } : nil)
    }

    /// Deletes a stack or context with its elements and attachments.
    public func deleteOwner(_ kind: OwnerKind, id: String, by principal: Principal) async throws {
        try principal.require(.write)
        let owners = self.owners
        let deleted = try await database.withConnection { connection in
            let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
            return try await owners.delete(kind: kind, id: id, spaces: reach, on: connection)
        }
        guard deleted else { throw Self.notFound(kind, id) }
    }

    // MARK: Config elements

    /// Sets a config element, sealing its value. Returns the element and whether it is new.
    public func putElement(
        _ kind: OwnerKind, ownerID: String, configID: String, _ input: ConfigElementInput, by principal: Principal
    ) async throws -> (ConfigElementView, created: Bool) {
        try principal.require(.write)
        let plaintext = try ConfigValidation.plaintext(of: input, configID: configID)
        guard input.description.count <= 10_000 else { throw CofferError.invalidInput("a description may be at most 10,000 characters") }
        let checksum = Hex.encode(SHA256.hash(data: plaintext))
        let (owners, elements, keyring) = (self.owners, self.elements, self.keyring)
        return try await database.transaction { connection in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, on: connection)
            let sealed = try keyring.seal(
                plaintext, purpose: .database,
                associatedData: AssociatedData.configValue(ownerID: owner.uuid, configID: configID)
            )
            let now = Date()
            let record = ConfigElementRecord(
                ownerID: owner.uuid, configID: configID, type: input.type.rawValue, writeOnly: input.writeOnly,
                sealedValue: sealed.bytes, dekVersion: Int32(sealed.keyVersion), checksum: checksum,
                description: input.description, createdAt: now, updatedAt: now
            )
            let created = try await elements.upsert(record, on: connection)
            let view = ConfigElementView(
                id: configID, type: input.type, value: input.writeOnly ? nil : input.value, writeOnly: input.writeOnly,
                checksum: checksum, description: input.description, createdAt: now, updatedAt: now
            )
            return (view, created)
        }
    }

    /// The elements of a stack or context; write-only values are withheld.
    public func listElements(_ kind: OwnerKind, ownerID: String, by principal: Principal) async throws -> [ConfigElementView] {
        try principal.require(.read)
        let (owners, elements) = (self.owners, self.elements)
        let (owner, rows) = try await database.withConnection { connection in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, on: connection)
            return (owner, try await elements.elements(of: [owner.uuid], on: connection))
        }
        return try rows.map { row in
            let type = ConfigElementType(rawValue: row.type) ?? .environmentVariable
            let value: String? = row.writeOnly ? nil : try Self.render(open(row, owner: owner.uuid), type: type)
            return ConfigElementView(
                id: row.configID, type: type, value: value, writeOnly: row.writeOnly, checksum: row.checksum,
                description: row.description, createdAt: row.createdAt, updatedAt: row.updatedAt
            )
        }
    }

    /// Deletes an element.
    public func deleteElement(_ kind: OwnerKind, ownerID: String, configID: String, by principal: Principal) async throws {
        try principal.require(.write)
        let (owners, elements) = (self.owners, self.elements)
        let deleted = try await database.withConnection { connection in
            let owner = try await Self.findOwner(kind, id: ownerID, principal: principal, owners: owners, on: connection)
            return try await elements.delete(ownerID: owner.uuid, configID: configID, on: connection)
        }
        guard deleted else { throw CofferError.notFound("\(kind.rawValue) `\(ownerID)` has no config element `\(configID)`") }
    }

    // MARK: Attachments

    /// Attaches a context to a stack with a priority (0 is the highest), or changes it.
    public func attach(stackID: String, contextID: String, priority: Int, by principal: Principal) async throws {
        try principal.require(.write)
        guard (0...1_000_000).contains(priority) else {
            throw CofferError.invalidInput("priority must be an integer from 0 to 1000000", code: "invalid_priority")
        }
        let (owners, attachments) = (self.owners, self.attachments)
        try await database.transaction { connection in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, on: connection)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, on: connection)
            try await attachments.attach(stack: stack.uuid, context: context.uuid, priority: Int32(priority), on: connection)
        }
    }

    /// Detaches a context from a stack.
    public func detach(stackID: String, contextID: String, by principal: Principal) async throws {
        try principal.require(.write)
        let (owners, attachments) = (self.owners, self.attachments)
        let detached = try await database.transaction { connection in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, on: connection)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, on: connection)
            return try await attachments.detach(stack: stack.uuid, context: context.uuid, on: connection)
        }
        guard detached else { throw CofferError.notFound("context `\(contextID)` is not attached to stack `\(stackID)`") }
    }

    // MARK: Runtime config

    /// The resolved elements of a stack with every value decrypted: the stack's own
    /// elements win, then attached contexts by ascending priority, ties by context id.
    public func runtimeConfig(stackID: String, by principal: Principal) async throws -> [RuntimeConfigItem] {
        try principal.require(.worker)
        let (owners, elements, attachments) = (self.owners, self.elements, self.attachments)
        let (stack, attached, rows) = try await database.withConnection { connection in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, on: connection)
            let attached = try await attachments.attachments(of: stack.uuid, on: connection)
            let rows = try await elements.elements(of: [stack.uuid] + attached.map(\.contextUUID), on: connection)
            return (stack, attached, rows)
        }
        let byOwner = Dictionary(grouping: rows, by: \.ownerID)
        let sources = [(stack.uuid, "stack")] + attached.map { ($0.contextUUID, "context:\($0.contextID)") }
        var resolved: [String: RuntimeConfigItem] = [:]
        for (ownerUUID, source) in sources {
            for row in byOwner[ownerUUID] ?? [] where resolved[row.configID] == nil {
                let type = ConfigElementType(rawValue: row.type) ?? .environmentVariable
                resolved[row.configID] = RuntimeConfigItem(
                    id: row.configID, type: type, value: try Self.render(open(row, owner: ownerUUID), type: type),
                    writeOnly: row.writeOnly, source: source
                )
            }
        }
        logger.info("runtime config read", metadata: [
            "stack": "\(stackID)", "api_key": "\(principal.apiKeyID)", "elements": "\(resolved.count)",
        ])
        return resolved.values.sorted { $0.id < $1.id }
    }

    // MARK: Helpers

    private func open(_ row: ConfigElementRecord, owner: UUID) throws -> [UInt8] {
        let sealed = try SealedValue(bytes: row.sealedValue)
        return try keyring.open(sealed, purpose: .database, associatedData: AssociatedData.configValue(ownerID: owner, configID: row.configID))
    }

    private static func render(_ plaintext: [UInt8], type: ConfigElementType) -> String {
        switch type {
        case .environmentVariable: return String(decoding: plaintext, as: UTF8.self)
        case .fileMount: return Data(plaintext).base64EncodedString()
        }
    }

    private static func findOwner(
        _ kind: OwnerKind, id: String, principal: Principal, owners: OwnerRepository, on connection: PostgresConnection
    ) async throws -> OwnerRecord {
        let reach = try await owners.spaceSubtree(of: principal.space, on: connection)
        guard let owner = try await owners.find(kind: kind, id: id, spaces: reach, on: connection) else {
            throw notFound(kind, id)
        }
        return owner
    }

    private static func notFound(_ kind: OwnerKind, _ id: String) -> CofferError {
        CofferError.notFound("\(kind.rawValue) `\(id)` not found")
    }
}
