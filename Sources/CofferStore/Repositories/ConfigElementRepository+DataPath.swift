import Foundation
import Logging
import PostgresNIO

/// The winning element of one config id in a stack's runtime config.
public struct RuntimeConfigRow: Sendable, Equatable {
    /// The stack or context whose element won (its UUID is bound into the value's sealing).
    public var ownerID: UUID
    /// `stack` or `context:<id>`.
    public var source: String
    public var configID: String
    public var type: String
    public var writeOnly: Bool
    public var sealedValue: [UInt8]
    /// The element version the value was written as (bound into its sealing).
    public var version: Int32
}

/// A stack's resolved runtime config with what the resolution relied on, for the caller to
/// check: the stack's row and the chain of spaces above its space (nearest first, as the
/// statement walked it), the row of each context that gives values, and each explicit
/// attachment, with their codes. (Rows carry their deciding fields only: no names,
/// descriptions or times.)
public struct RuntimeConfigResult: Sendable {
    public var stack: OwnerRecord
    public var chain: [String]
    public var contexts: [OwnerRecord]
    public var attachments: [StoredAttachment]
    public var rows: [RuntimeConfigRow]
}

/// An explicit attachment of a context to a stack as stored, with its authentication code.
public struct StoredAttachment: Sendable, Equatable {
    public var context: UUID
    public var priority: Int32
    public var mac: [UInt8]?
    public var macVersion: Int32?
}

/// The caller of an audited operation, as its audit row records it.
public struct AuditActor: Sendable, Equatable {
    public var actor: String
    public var actorSpace: String
    public var requestID: String
    /// The code the writer made for the event (see `AuditChain` in CofferCore), stored with it.
    public var code: [UInt8]?
    public var codeVersion: Int32?

    public init(actor: String, actorSpace: String, requestID: String, code: (bytes: [UInt8], version: Int32)? = nil) {
        self.actor = actor
        self.actorSpace = actorSpace
        self.requestID = requestID
        self.code = code?.bytes
        self.codeVersion = code?.version
    }
}

/// A config write as the caller sealed it: for owner `ownerUUID`, under data key version
/// `dekVersion`, as element version `version`.
public struct ElementWrite: Sendable {
    public var kind: OwnerKind
    public var ownerID: String
    public var ownerUUID: UUID?
    public var configID: String
    public var type: String
    public var writeOnly: Bool
    public var sealedValue: [UInt8]
    public var dekVersion: Int32
    public var checksum: String
    public var description: String
    /// A new element is refused when its owner already holds this many.
    public var maxElements: Int
    /// The version the value was sealed for: the write is refused (``ElementWriteOutcome/versionChanged(latest:)``)
    /// unless it is the element's next one.
    public var version: Int32

    public init(kind: OwnerKind, ownerID: String, ownerUUID: UUID?, configID: String, type: String, writeOnly: Bool,
                sealedValue: [UInt8], dekVersion: Int32, checksum: String, description: String, maxElements: Int, version: Int32) {
        self.kind = kind
        self.ownerID = ownerID
        self.ownerUUID = ownerUUID
        self.configID = configID
        self.type = type
        self.writeOnly = writeOnly
        self.sealedValue = sealedValue
        self.dekVersion = dekVersion
        self.checksum = checksum
        self.description = description
        self.maxElements = maxElements
        self.version = version
    }
}

/// What ``ConfigElementRepository/write(_:reachFrom:by:on:)`` did.
public enum ElementWriteOutcome: Sendable, Equatable {
    /// No such stack or context in the caller's reach; nothing written or audited.
    case notFound
    /// The owner's UUID is not the one the value was sealed for: seal it again for `uuid`.
    case ownerChanged(uuid: UUID)
    /// The data key version is no longer active: reload the keys and seal again.
    case staleKey
    /// The element is new and its owner already holds `maxElements`; nothing written.
    case tooManyElements
    /// The value was sealed for another version than the next: the latest is `latest`
    /// (0 for none); seal again for the one after it.
    case versionChanged(latest: Int32)
    /// The element already held exactly this; audited, no new version.
    case unchanged(space: String, version: Int32, createdAt: Date, updatedAt: Date)
    /// Stored as `version`; `created` when the element is new.
    case written(space: String, version: Int32, createdAt: Date, updatedAt: Date, created: Bool)
}

/// The hot paths of config elements: each one statement, atomic with its audit row (SQL
/// functions of `migrations/0005_data_path.sql`), and a trivial second one that proves the
/// first committed (``StoreSession/confirmCommitted()``).
extension ConfigElementRepository {
    /// The resolved runtime config of a stack in the caller's reach, one row per config id
    /// (the winner), audited as `runtime_config.read` in the same statement; nil when the
    /// stack is not in reach (then nothing is audited). Contexts in `excluded` are resolved
    /// as if not explicitly attached (their attachment rows did not verify).
    public func runtimeConfig(
        stackID: String, reachFrom space: String, excluding excluded: [UUID] = [], by actor: AuditActor, on session: StoreSession
    ) async throws -> RuntimeConfigResult? {
        let result = try await session.closingIfReadOnly { () -> RuntimeConfigResult? in
            var result: RuntimeConfigResult?
            var contexts: [OwnerRecord] = []
            var attachments: [StoredAttachment] = []
            var rows: [RuntimeConfigRow] = []
            for try await (owner, source, configID, type, writeOnly, sealed, version, ownerSpace, chain, labels, priority, mac, macVersion)
            in try await session.execute(RuntimeConfigStatement(space: space, stackID: stackID, actor: actor, excluded: excluded)) {
                let code = mac.map { Array($0.readableBytesView) }
                if let configID, let type, let writeOnly, let sealed, let version {
                    rows.append(RuntimeConfigRow(
                        ownerID: owner, source: source, configID: configID, type: type, writeOnly: writeOnly,
                        sealedValue: Array(sealed.readableBytesView), version: version
                    ))
                } else if let priority {
                    attachments.append(StoredAttachment(context: owner, priority: priority, mac: code, macVersion: macVersion))
                } else if let ownerSpace, let labels {
                    let (kind, id): (OwnerKind, String) = source == "stack" ? (.stack, stackID) : (.context, String(source.dropFirst("context:".count)))
                    let record = OwnerRecord(uuid: owner, kind: kind, id: id, name: "", space: ownerSpace, labels: labels, description: "",
                                             mac: code, macVersion: macVersion)
                    if let chain, kind == .stack {
                        result = RuntimeConfigResult(stack: record, chain: chain, contexts: [], attachments: [], rows: [])
                    } else {
                        contexts.append(record)
                    }
                }
            }
            result?.contexts = contexts
            result?.attachments = attachments
            result?.rows = rows
            return result
        }
        guard let result else { return nil }
        // The audit row must have committed before any value is served.
        try await session.confirmCommitted()
        return result
    }

    /// Writes an element: checks the data key version is active, takes the next history
    /// version, stores the value and its history row and the audit row `config.put`, in
    /// one statement; or reports why it did not (see ``ElementWriteOutcome``).
    public func write(_ write: ElementWrite, reachFrom space: String, by actor: AuditActor, on session: StoreSession) async throws -> ElementWriteOutcome {
        let outcome = try await session.closingIfReadOnly { try await self.runWrite(write, reachFrom: space, by: actor, on: session) }
        // A write is acknowledged only once it has committed.
        switch outcome {
        case .written, .unchanged: try await session.confirmCommitted()
        case .notFound, .ownerChanged, .staleKey, .tooManyElements, .versionChanged: break
        }
        return outcome
    }

    private func runWrite(_ write: ElementWrite, reachFrom space: String, by actor: AuditActor, on session: StoreSession) async throws -> ElementWriteOutcome {
        var outcome: ElementWriteOutcome?
        for try await (status, uuid, ownerSpace, version, createdAt, updatedAt, created) in try await session.execute(
            PutElementStatement(space: space, write: write, actor: actor)
        ) {
            switch status {
            case "not_found":
                outcome = .notFound
            case "owner_changed":
                guard let uuid else { throw StoreError(.failed, "coffer_put_config_element answered owner_changed without an owner") }
                outcome = .ownerChanged(uuid: uuid)
            case "stale_key":
                outcome = .staleKey
            case "too_many_elements":
                outcome = .tooManyElements
            case "version_changed":
                guard let version else { throw StoreError(.failed, "coffer_put_config_element answered version_changed without a version") }
                outcome = .versionChanged(latest: version)
            case "unchanged", "written":
                guard let ownerSpace, let version, let createdAt, let updatedAt, let created else {
                    throw StoreError(.failed, "coffer_put_config_element answered \(status) with missing fields")
                }
                outcome = status == "unchanged"
                    ? .unchanged(space: ownerSpace, version: version, createdAt: createdAt, updatedAt: updatedAt)
                    : .written(space: ownerSpace, version: version, createdAt: createdAt, updatedAt: updatedAt, created: created)
            default:
                throw StoreError(.failed, "coffer_put_config_element answered an unknown status `\(status)`")
            }
        }
        guard let outcome else { throw StoreError(.failed, "coffer_put_config_element answered no row") }
        return outcome
    }
}

/// The statement behind ``ConfigElementRepository/runtimeConfig(stackID:reachFrom:excluding:by:on:)``.
struct RuntimeConfigStatement: PostgresPreparedStatement {
    static let name = "coffer_runtime_config_v4"
    static let sql = """
        SELECT owner_uuid, source, config_id, type, write_only, sealed_value, version, space, chain, labels, priority, mac, mac_version
        FROM coffer_runtime_config($1, $2, $3, $4, $5, $6, $7, $8)
        """
    typealias Row = (UUID, String, String?, String?, Bool?, ByteBuffer?, Int32?, String?, [String]?, [String]?, Int32?, ByteBuffer?, Int32?)

    var space: String
    var stackID: String
    var actor: AuditActor
    var excluded: [UUID]

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(space)
        bindings.append(stackID)
        bindings.append(actor.actor)
        bindings.append(actor.actorSpace)
        bindings.append(actor.requestID)
        bindings.append(actor.code.map { ByteBuffer(bytes: $0) })
        bindings.append(actor.codeVersion)
        bindings.append(excluded)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}

/// The statement behind ``ConfigElementRepository/write(_:reachFrom:by:on:)``.
struct PutElementStatement: PostgresPreparedStatement {
    static let name = "coffer_put_config_element_v4"
    static let sql = """
        SELECT status, owner_uuid, owner_space, version, created_at, updated_at, created
        FROM coffer_put_config_element_bounded($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
        """
    typealias Row = (String, UUID?, String?, Int32?, Date?, Date?, Bool?)

    var space: String
    var write: ElementWrite
    var actor: AuditActor

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings()
        bindings.append(space)
        bindings.append(write.kind.rawValue)
        bindings.append(write.ownerID)
        bindings.append(write.ownerUUID)
        bindings.append(write.configID)
        bindings.append(write.type)
        bindings.append(write.writeOnly)
        bindings.append(ByteBuffer(bytes: write.sealedValue))
        bindings.append(write.dekVersion)
        bindings.append(write.checksum)
        bindings.append(write.description)
        bindings.append(actor.actor)
        bindings.append(actor.actorSpace)
        bindings.append(actor.requestID)
        bindings.append(Int32(clamping: write.maxElements))
        bindings.append(write.version)
        bindings.append(actor.code.map { ByteBuffer(bytes: $0) })
        bindings.append(actor.codeVersion)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        try row.decode(Row.self)
    }
}
