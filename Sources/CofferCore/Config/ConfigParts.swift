import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// What the config services share: the database, the keyring and the key lifecycle that
/// keeps it fresh, the repositories, the audit trail and the role check.
struct ConfigParts: Sendable {
    let database: Database
    let keyring: Keyring
    let owners: OwnerRepository
    let spaces: SpaceRepository
    let elements: ConfigElementRepository
    let attachments: AttachmentRepository
    let audit: AuditLog
    let access: AccessControl
    /// Reach by authenticated space rows, and the codes of attachments.
    let tree: SpaceTree
    /// Owner UUIDs for writes (verified by every write's statement).
    let ownerHints = OwnerUUIDHints()
    /// Latest element versions for writes (verified by every write's statement).
    let versionHints = ElementVersionHints()
    /// Confirms inside each write that the sealing key is still active, and reloads the
    /// keyring when another process rotated it. Nil in tests of the services alone.
    let lifecycle: KeyLifecycle?
    /// Elements per owner and bytes per page.
    let limits: CofferLimits
    let logger: Logger

    init(database: Database, keyring: Keyring, lifecycle: KeyLifecycle?, audit: AuditLog? = nil, tree: SpaceTree? = nil,
         limits: CofferLimits = CofferLimits(), logger: Logger) {
        self.database = database
        self.keyring = keyring
        self.lifecycle = lifecycle
        self.owners = OwnerRepository(logger: logger)
        self.spaces = SpaceRepository(logger: logger)
        self.elements = ConfigElementRepository(logger: logger)
        self.attachments = AttachmentRepository(logger: logger)
        self.audit = audit ?? AuditLog(database: database, keyring: keyring, logger: logger)
        self.limits = limits
        self.access = AccessControl(audit: self.audit)
        self.tree = tree ?? SpaceTree(integrity: RowIntegrity(keyring: keyring, logger: logger), logger: logger)
        self.logger = logger
    }
}

/// A config service: reads its parts as its own properties, and shares the helpers below.
protocol ConfigServing: Sendable {
    var parts: ConfigParts { get }
}

extension ConfigServing {
    var database: Database { parts.database }
    var keyring: Keyring { parts.keyring }
    var owners: OwnerRepository { parts.owners }
    var spaces: SpaceRepository { parts.spaces }
    var elements: ConfigElementRepository { parts.elements }
    var attachments: AttachmentRepository { parts.attachments }
    var audit: AuditLog { parts.audit }
    var access: AccessControl { parts.access }
    var tree: SpaceTree { parts.tree }
    var integrity: RowIntegrity { parts.tree.integrity }
    var ownerHints: OwnerUUIDHints { parts.ownerHints }
    var versionHints: ElementVersionHints { parts.versionHints }
    var lifecycle: KeyLifecycle? { parts.lifecycle }
    var limits: CofferLimits { parts.limits }
    var logger: Logger { parts.logger }


    /// Runs a read or write again with freshly loaded keys (``KeyLifecycle/withFreshKeys(_:_:)``).
    func withFreshKeys<T: Sendable>(_ write: () async throws -> T) async throws -> T {
        try await KeyLifecycle.withFreshKeys(lifecycle, write)
    }

    func render(_ row: ConfigElementRecord, owner: UUID) throws -> String {
        let type = try ConfigElementType.of(row)  // an unknown type is refused before opening
        let place = ConfigValuePlace(ownerID: owner, configID: row.configID, type: row.type, writeOnly: row.writeOnly, version: row.version)
        return Self.render(try open(row.sealedValue, place: place), type: type)
    }

    /// Opens a stored config value in its place. One that does not open there (its row's
    /// `write_only`, type or version edited in SQL, or its bytes copied from another version
    /// or element) is refused and logged as an integrity failure: no route serves it.
    func open(_ bytes: [UInt8], place: ConfigValuePlace) throws -> [UInt8] {
        do {
            return try keyring.openConfigValue(try SealedValue(bytes: bytes), place: place)
        } catch let error as SealError where error.code == .authenticationFailed {
            logger.error("integrity failure: a stored config value does not open in its place and is not served", metadata: [
                "table": "config_elements", "owner": "\(place.ownerID)", "config_id": "\(place.configID)", "version": "\(place.version)",
            ])
            throw error
        }
    }

    static func render(_ plaintext: [UInt8], type: ConfigElementType) -> String {
        switch type {
        case .environmentVariable: return String(decoding: plaintext, as: UTF8.self)
        case .fileMount: return Data(plaintext).base64EncodedString()
        }
    }

    static func view(_ row: ConfigElementRecord, value: String?) throws -> ConfigElementView {
        ConfigElementView(
            id: row.configID, type: try ConfigElementType.of(row), value: value,
            writeOnly: row.writeOnly, checksum: row.checksum, description: row.description, version: Int(row.version),
            createdAt: row.createdAt, updatedAt: row.updatedAt
        )
    }

    static func elementResource(_ kind: OwnerKind, _ ownerID: String, _ configID: String) -> String {
        "\(kind.rawValue):\(ownerID)/config/\(configID)"
    }

    /// The stack or context of this kind and id if it lies in the caller's reach, by the SQL
    /// and by the authenticated space tree both, and its row carries a valid code.
    static func findOwner(
        _ kind: OwnerKind, id: String, principal: Principal, owners: OwnerRepository, tree: SpaceTree, on session: StoreSession
    ) async throws -> OwnerRecord {
        guard let owner = try await owners.find(kind: kind, id: id, reachFrom: principal.space, on: session),
              tree.integrity.verify(owner),
              try await tree.confirm(owner.space, within: principal.space, on: session) else {
            throw notFound(kind, id)
        }
        return owner
    }

    static func tooManyElements(_ kind: OwnerKind, _ id: String, _ limit: Int) -> CofferError {
        CofferError.tooManyElements("\(kind.rawValue) `\(id)` already holds \(limit) config elements, the most allowed (COFFER_MAX_ELEMENTS_PER_OWNER)")
    }

    static func notFound(_ kind: OwnerKind, _ id: String) -> CofferError {
        CofferError.notFound("\(kind.rawValue) `\(id)` not found")
    }
}
