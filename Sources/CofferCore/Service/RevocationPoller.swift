import Logging
import ServiceLifecycle

/// Keeps the revocation list of this replica current: refreshes it from the database
/// every ``RevocationList/pollInterval`` until the service group stops.
public struct RevocationPoller: Service {
    let revocations: RevocationList
    let database: Database
    let logger: Logger

    public init(revocations: RevocationList, database: Database, logger: Logger) {
        self.revocations = revocations
        self.database = database
        self.logger = logger
    }

    /// The list was loaded before serving, so the loop sleeps first.
    public func run() async throws {
        while !Task.isCancelled {
            try? await Task.sleep(for: RevocationList.pollInterval)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            do {
                try await revocations.refresh(from: database, logger: logger)
            } catch {
                logger.warning("could not refresh revoked API keys; retrying", metadata: ["error": "\(error)"])
            }
        }
    }
}
