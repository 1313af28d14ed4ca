import Foundation
import Logging
import ServiceLifecycle

/// Keeps the audit trail tamper-evident in the background of a serving replica: chains the
/// events written since the last round (``AuditChain/chainPending(limit:)``; one replica at
/// a time, the others skip) every `chainInterval`, and checks the whole trail
/// (``AuditChain/verify(batch:)``) every `verifyInterval`, logging the first bad event and
/// setting the metric `coffer_audit_trail_intact`.
public struct AuditChainer: Service {
    let chain: AuditChain
    let chainInterval: Int
    let verifyInterval: Int
    let logger: Logger

    public init(chain: AuditChain, chainInterval: Int, verifyInterval: Int, logger: Logger) {
        self.chain = chain
        self.chainInterval = chainInterval
        self.verifyInterval = verifyInterval
        self.logger = logger
    }

    public func run() async throws {
        // The first full check comes one interval after start: replicas restarting together
        // do not all read the whole trail at once.
        var lastVerification = ContinuousClock.now
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                while try await chain.chainPending() > 0 && !Task.isShuttingDownGracefully {}
                if ContinuousClock.now - lastVerification >= .seconds(verifyInterval) {
                    lastVerification = .now
                    if case .intact(let chained, let pending) = try await chain.verify() {
                        logger.debug("audit trail intact", metadata: ["chained": "\(chained)", "pending": "\(pending)"])
                    }
                }
            } catch {
                logger.warning("audit chaining failed; retrying", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(chainInterval))
        }
    }
}
