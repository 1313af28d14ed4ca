import Foundation
import Logging
import PostgresNIO

/// A context attached to a stack, as resolution needs it.
public struct AttachmentRecord: Sendable, Equatable {
    public var contextUUID: UUID
    public var contextID: String
    /// The context's space.
    public var contextSpace: String
    public var priority: Int32
}

/// SQL for `stack_context_attachments`.
public struct AttachmentRepository: Sendable {
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Attaches a context to a stack, or changes its priority, with the attachment's code.
    public func attach(stack: UUID, context: UUID, priority: Int32, mac: [UInt8]?, macVersion: Int32?, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO stack_context_attachments (stack_uuid, context_uuid, priority, mac, mac_version)
            VALUES (\(stack), \(context), \(priority), \(mac.map { ByteBuffer(bytes: $0) }), \(macVersion))
            ON CONFLICT (stack_uuid, context_uuid)
            DO UPDATE SET priority = EXCLUDED.priority, mac = EXCLUDED.mac, mac_version = EXCLUDED.mac_version
            """,
            logger: logger
        )
    }

    /// Attachments (stack, then the stored attachment) whose code `integrity` key version
    /// `macVersion` made (every attachment without a code when nil).
    public func attachmentsAuthenticated(byVersion macVersion: Int32?, on session: StoreSession) async throws -> [(stack: UUID, StoredAttachment)] {
        var result: [(stack: UUID, StoredAttachment)] = []
        for try await (stack, context, priority, mac, version) in try await session.query(
            """
            SELECT stack_uuid, context_uuid, priority, mac, mac_version FROM stack_context_attachments
            WHERE (\(macVersion)::integer IS NULL AND mac IS NULL) OR mac_version = \(macVersion)
            """,
            logger: logger
        ).decode((UUID, UUID, Int32, ByteBuffer?, Int32?).self) {
            result.append((stack, StoredAttachment(context: context, priority: priority, mac: mac.map { Array($0.readableBytesView) }, macVersion: version)))
        }
        return result
    }

    public func setAuthenticationCode(stack: UUID, context: UUID, mac: [UInt8], macVersion: Int32, on session: StoreSession) async throws {
        try await session.query(
            """
            UPDATE stack_context_attachments SET mac = \(ByteBuffer(bytes: mac)), mac_version = \(macVersion)
            WHERE stack_uuid = \(stack) AND context_uuid = \(context)
            """,
            logger: logger
        )
    }

    /// Detaches a context. Returns false if it was not attached.
    public func detach(stack: UUID, context: UUID, on session: StoreSession) async throws -> Bool {
        let rows = try await session.query(
            "DELETE FROM stack_context_attachments WHERE stack_uuid = \(stack) AND context_uuid = \(context) RETURNING priority",
            logger: logger
        ).collect()
        return !rows.isEmpty
    }

    /// The contexts attached to a stack, by ascending priority, ties by context id.
    public func attachments(of stack: UUID, on session: StoreSession) async throws -> [AttachmentRecord] {
        var result: [AttachmentRecord] = []
        let rows = try await session.query(
            """
            SELECT a.context_uuid, o.id, o.space, a.priority
            FROM stack_context_attachments a JOIN config_owners o ON o.uuid = a.context_uuid
            WHERE a.stack_uuid = \(stack)
            ORDER BY a.priority, o.id
            """,
            logger: logger
        )
        for try await (uuid, id, space, priority) in rows.decode((UUID, String, String, Int32).self) {
            result.append(AttachmentRecord(contextUUID: uuid, contextID: id, contextSpace: space, priority: priority))
        }
        return result
    }

    /// An explicit attachment whose context no longer lies in its stack's space or above
    /// it (after a space moved in this transaction), as (stack id, context id); nil if
    /// every attachment is still valid.
    public func strandedAttachment(on session: StoreSession) async throws -> (stack: String, context: String)? {
        let rows = try await session.query(
            """
            WITH RECURSIVE up(space, ancestor, depth) AS (
                SELECT id, id, 0 FROM spaces
                UNION ALL
                SELECT up.space, s.parent, up.depth + 1 FROM up JOIN spaces s ON s.id = up.ancestor
                WHERE s.parent IS NOT NULL AND up.depth < 1000
            )
            SELECT st.id, ct.id
            FROM stack_context_attachments a
            JOIN config_owners st ON st.uuid = a.stack_uuid
            JOIN config_owners ct ON ct.uuid = a.context_uuid
            WHERE NOT EXISTS (SELECT 1 FROM up WHERE up.space = st.space AND up.ancestor = ct.space)
            ORDER BY st.id, ct.id
            LIMIT 1
            """,
            logger: logger
        )
        for try await (stack, context) in rows.decode((String, String).self) { return (stack, context) }
        return nil
    }
}
