import CofferStore
import Foundation
import Logging
import Synchronization

/// The space tree as its authenticated rows have it: which spaces lie below which, with
/// every link (a space and its parent) carrying a valid code (``RowIntegrity``). `root` is
/// implicit. A space whose row was inserted or re-parented by someone with only database
/// access has no verified link, so it and everything below it lie in nobody's reach.
///
/// Reach is decided twice: by the SQL that finds a row (the space subtree of the caller's
/// space, in the same statement), and here, and a row is in reach only when both agree.
/// This replica keeps the verified links in memory, loaded on the first use and again
/// whenever the two disagree (another replica moved or created a space since, or a row was
/// tampered with); a link kept from before a move can only refuse, never grant, since the
/// SQL's answer must agree too.
public final class SpaceTree: Sendable {
    let integrity: RowIntegrity
    private let repository: SpaceRepository
    private let owners: OwnerRepository
    private let logger: Logger
    /// Each verified space's parent, nil before the first load.
    private let parents = Mutex<[String: String]?>(nil)

    public init(integrity: RowIntegrity, logger: Logger) {
        self.integrity = integrity
        self.repository = SpaceRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
        self.logger = logger
    }

    /// Whether `space` lies in `caller`'s subtree by verified links. Call it for a space
    /// the SQL put in reach: a disagreement reloads the links once, and one that stays is
    /// an integrity failure (the row is treated as absent).
    public func confirm(_ space: String, within caller: String, on session: StoreSession) async throws -> Bool {
        if chain(of: space)?.contains(caller) == true { return true }
        try await reload(on: session)
        if chain(of: space)?.contains(caller) == true { return true }
        refused(space, within: caller)
        return false
    }

    /// ``confirm(_:within:on:)`` outside a session: one is taken only when the links this
    /// replica holds do not agree.
    public func confirm(_ space: String, within caller: String, using database: Database) async throws -> Bool {
        if isConfirmed(space, within: caller) { return true }
        return try await database.withSession { try await self.confirm(space, within: caller, on: $0) }
    }

    /// The caller's reach: the spaces of `caller`'s subtree by the SQL and by verified links.
    public func reach(of caller: String, on session: StoreSession) async throws -> [String] {
        try await subtree(of: caller, owners.spaceSubtree(of: caller, on: session), on: session)
    }

    /// Whether `space` lies in `caller`'s subtree by the links this replica holds, without
    /// reading them again: a fast yes, or a no to follow with ``confirm(_:within:on:)``.
    public func isConfirmed(_ space: String, within caller: String) -> Bool {
        chain(of: space)?.contains(caller) == true
    }

    /// Whether `chain`, a space followed by its ancestors as a statement walked them, is the
    /// chain the verified links give, and holds `caller`.
    public func confirm(chain: [String], within caller: String, on session: StoreSession) async throws -> Bool {
        guard let space = chain.first else { return false }
        if let verified = self.chain(of: space), verified == chain, chain.contains(caller) { return true }
        try await reload(on: session)
        if let verified = self.chain(of: space), verified == chain, chain.contains(caller) { return true }
        refused(space, within: caller)
        return false
    }

    /// The spaces of `reach` (the caller's subtree as the SQL found it) that lie in
    /// `caller`'s subtree by verified links too.
    public func subtree(of caller: String, _ reach: [String], on session: StoreSession) async throws -> [String] {
        let confirmed = reach.filter { chain(of: $0)?.contains(caller) == true }
        if confirmed.count == reach.count { return confirmed }
        try await reload(on: session)
        var verified: [String] = []
        for space in reach {
            if chain(of: space)?.contains(caller) == true { verified.append(space) } else { refused(space, within: caller) }
        }
        return verified
    }

    /// The spaces from `space` up to `root`, nearest first, by verified links; nil when a
    /// link on the way is not verified (or not loaded yet).
    func chain(of space: String) -> [String]? {
        parents.withLock { parents -> [String]? in
            guard let parents else { return nil }
            var chain = [space]
            var current = space
            while current != SpaceRecord.root {
                guard let parent = parents[current], chain.count <= 1000 else { return nil }
                chain.append(parent)
                current = parent
            }
            return chain
        }
    }

    /// Reads every space and keeps the links whose code verifies. Each one that does not is
    /// counted and logged as an integrity failure by ``RowIntegrity``.
    public func reload(on session: StoreSession) async throws {
        var verified: [String: String] = [:]
        for link in try await repository.links(on: session) where link.id != SpaceRecord.root {
            guard let parent = link.parent, integrity.check(link) == .authentic else { continue }
            verified[link.id] = parent
        }
        parents.withLock { $0 = verified }
    }

    private func refused(_ space: String, within caller: String) {
        logger.error("integrity failure: a space is in reach only through space rows that do not carry a valid authentication code; treated as absent", metadata: [
            "space": "\(space)", "caller_space": "\(caller)",
        ])
    }
}

/// The deciding fields of a space (its id and parent) and of an explicit attachment (its
/// stack, context and priority: which values a stack's runtime config takes, and which win).
extension RowIntegrity {
    static let spaces = "spaces"
    static let attachments = "stack_context_attachments"

    static func spaceFields(id: String, parent: String) -> [String] {
        [id, parent]
    }

    static func attachmentFields(stack: UUID, context: UUID, priority: Int32) -> [String] {
        [stack.uuidString, context.uuidString, String(priority)]
    }

    func seal(_ space: SpaceRecord) throws -> SpaceRecord {
        var space = space
        (space.mac, space.macVersion) = try seal(table: Self.spaces, Self.spaceFields(id: space.id, parent: space.parent ?? ""))
        return space
    }

    func check(_ link: StoredSpaceLink) -> Verdict {
        check(table: Self.spaces, row: link.id, Self.spaceFields(id: link.id, parent: link.parent ?? ""), code: link.mac, version: link.macVersion)
    }

    func sealAttachment(stack: UUID, context: UUID, priority: Int32) throws -> (code: [UInt8], version: Int32) {
        try seal(table: Self.attachments, Self.attachmentFields(stack: stack, context: context, priority: priority))
    }

    func check(_ attachment: StoredAttachment, of stack: UUID) -> Verdict {
        check(table: Self.attachments, row: "\(stack.uuidString)/\(attachment.context.uuidString)",
              Self.attachmentFields(stack: stack, context: attachment.context, priority: attachment.priority),
              code: attachment.mac, version: attachment.macVersion)
    }

    /// Gives every space, attachment, stack and context whose code `integrity` key version `version` made a
    /// new code under the active version (those that verify), or, with `version` nil, a
    /// first code to every one that has none: only the `coffer migrate` that adds their
    /// codes does that, once. Returns how many.
    func authenticateTreeRows(madeBy version: Int32?, on session: StoreSession) async throws -> Int {
        let spaces = SpaceRepository(logger: logger)
        let attachments = AttachmentRepository(logger: logger)
        let owners = OwnerRepository(logger: logger)
        var count = 0
        func fresh(_ sealed: (code: [UInt8], version: Int32)) throws -> (code: [UInt8], version: Int32) {
            guard sealed.version != version else { throw StaleKeyring() }
            return sealed
        }
        for link in try await spaces.spacesAuthenticated(byVersion: version, on: session) where version == nil || check(link) == .authentic {
            guard let parent = link.parent else { continue }
            let sealed = try fresh(seal(table: Self.spaces, Self.spaceFields(id: link.id, parent: parent)))
            try await spaces.setAuthenticationCode(id: link.id, mac: sealed.code, macVersion: sealed.version, on: session)
            count += 1
        }
        for (stack, attachment) in try await attachments.attachmentsAuthenticated(byVersion: version, on: session)
        where version == nil || check(attachment, of: stack) == .authentic {
            let sealed = try fresh(sealAttachment(stack: stack, context: attachment.context, priority: attachment.priority))
            try await attachments.setAuthenticationCode(stack: stack, context: attachment.context, mac: sealed.code, macVersion: sealed.version, on: session)
            count += 1
        }
        for owner in try await owners.ownersAuthenticated(byVersion: version, on: session) where version == nil || verify(owner) {
            let sealed = try fresh(seal(table: Self.owners, Self.ownerFields(owner)))
            try await owners.setAuthenticationCode(uuid: owner.uuid, mac: sealed.code, macVersion: sealed.version, on: session)
            count += 1
        }
        return count
    }
}

/// The deciding fields of a stack or context: which owner it is (uuid, kind, id), where it
/// lies (space: who reaches it) and its labels (which stacks a context auto-attaches to).
/// (Its name, description and times decide nothing.)
extension RowIntegrity {
    static let owners = "config_owners"

    static func ownerFields(_ owner: OwnerRecord) -> [String] {
        [owner.uuid.uuidString, owner.kind.rawValue, owner.id, owner.space] + owner.labels
    }

    func seal(_ owner: OwnerRecord) throws -> OwnerRecord {
        var owner = owner
        (owner.mac, owner.macVersion) = try seal(table: Self.owners, Self.ownerFields(owner))
        return owner
    }

    func check(_ owner: OwnerRecord) -> Verdict {
        check(table: Self.owners, row: "\(owner.kind.rawValue):\(owner.id)", Self.ownerFields(owner), code: owner.mac, version: owner.macVersion)
    }

    func verify(_ owner: OwnerRecord) -> Bool {
        check(owner) == .authentic
    }
}
