import ArgumentParser
import CofferCore
import CofferStore
import Foundation
import Logging

/// `coffer audit verify`.
struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit",
        abstract: "Check the audit trail.",
        subcommands: [Verify.self]
    )

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that no audit event was edited, inserted or deleted outside Coffer.",
            discussion: """
                Closes with a checkpoint the events written since `coffer serve` last did, then checks \
                every checkpoint's code, every event of a closed range against its checkpoint's list \
                and every event's writer's code. Exit 0 when the trail is intact; exit 1 with one line \
                naming the first event edited, inserted or deleted otherwise. Not detected: events \
                deleted with the newest checkpoint that lists them, an event's space, detail or time \
                edited before its range was closed (COFFER_AUDIT_CHAIN_INTERVAL), or the whole trail \
                put back from an earlier copy. Needs the root key configuration (ENCRYPTION_*) and \
                DATABASE_URL.
                """
        )

        func run() async throws {
            let verdict = try await KeysCommand.withServices(label: "coffer.audit") { services in
                while try await services.auditChain.chainPending() > 0 {}
                return try await services.auditChain.verify(logging: false)
            }
            switch verdict {
            case .intact(let chained, let pending):
                print("audit trail intact: \(chained) event(s) in checkpoints, \(pending) not in one yet (each carries its writer's code)")
            case .broken(let id, let seq, let reason):
                throw CommandFailure(code: ExitStatus.unexpected, message: "audit event \(id)\(seq.map { " (checkpoint \($0))" } ?? ""): \(reason)")
            }
        }
    }
}
