import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Explicit attachments of contexts to stacks, with their priorities.
public struct AttachmentService: ConfigServing {
    let parts: ConfigParts

    init(parts: ConfigParts) {
        self.parts = parts
    }

    /// Attaches a context to a stack with a priority (0 is the highest), or changes it.
    /// The context must lie in the stack's space or one of its parents.
    public func attach(stackID: String, contextID: String, priority: Int, by principal: Principal) async throws {
        let resource = "stack:\(stackID)/contexts/\(contextID)"
        try await access.require(principal, .write, action: "attachment.put", resource: resource, space: nil)
        guard (0...1_000_000).contains(priority) else {
            throw CofferError.invalidPriority("priority must be an integer from 0 to 1000000")
        }
        let (owners, spaces, attachments, audit, integrity) = (self.owners, self.spaces, self.attachments, self.audit, self.integrity)
        try await withFreshKeys { try await database.transaction { session in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, tree: tree, on: session)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, tree: tree, on: session)
            guard try await spaces.ancestry(of: stack.space, on: session).contains(context.space),
                  try await tree.confirm(stack.space, within: context.space, on: session) else {
                throw CofferError.contextOutOfReach("context `\(contextID)` (space `\(context.space)`) is not in the space of stack `\(stackID)` or above it")
            }
            let code = try integrity.sealAttachment(stack: stack.uuid, context: context.uuid, priority: Int32(priority))
            try await integrity.confirmActive(code.version, on: session)
            try await attachments.attach(stack: stack.uuid, context: context.uuid, priority: Int32(priority), mac: code.code, macVersion: code.version, on: session)
            try await audit.record("attachment.put", resource: resource, space: stack.space, by: principal, detail: "priority=\(priority)", on: session)
        } }
    }

    /// Detaches a context from a stack.
    public func detach(stackID: String, contextID: String, by principal: Principal) async throws {
        let resource = "stack:\(stackID)/contexts/\(contextID)"
        try await access.require(principal, .write, action: "attachment.delete", resource: resource, space: nil)
        let (owners, attachments, audit) = (self.owners, self.attachments, self.audit)
        try await database.transaction { session in
            let stack = try await Self.findOwner(.stack, id: stackID, principal: principal, owners: owners, tree: tree, on: session)
            let context = try await Self.findOwner(.context, id: contextID, principal: principal, owners: owners, tree: tree, on: session)
            guard try await attachments.detach(stack: stack.uuid, context: context.uuid, on: session) else {
                throw CofferError.notFound("context `\(contextID)` is not attached to stack `\(stackID)`")
            }
            try await audit.record("attachment.delete", resource: resource, space: stack.space, by: principal, on: session)
        }
    }
}
