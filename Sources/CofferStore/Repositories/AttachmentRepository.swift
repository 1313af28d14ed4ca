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

    /// Attaches a context to a stack, or changes its priority.
    public func attach(stack: UUID, context: UUID, priority: Int32, on session: StoreSession) async throws {
        try await session.query(
            """
            INSERT INTO stack_context_attachments (stack_uuid, context_uuid, priority)
            VALUES (\(stack), \(context), \(priority))
            ON CONFLICT (stack_uuid, context_uuid) DO UPDATE SET priority = EXCLUDED.priority
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
}
