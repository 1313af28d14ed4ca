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

    /// The list was loaded before serving, so the loop sleeps first. After a failed refresh
    /// it tries again every half second: once the list is stale the replica refuses every
    /// token, so it must notice the database is back at once.
    public func run() async throws {
        var pause = RevocationList.pollInterval
        while !Task.isCancelled {
            try? await Task.sleep(for: pause)
            if Task.isShuttingDownGracefully || Task.isCancelled { return }
            do {
                try await revocations.refresh(from: database, logger: logger)
                pause = RevocationList.pollInterval
            } catch {
                logger.warning("could not refresh revoked API keys; retrying", metadata: ["error": "\(error)"])
                pause = .milliseconds(500)
            }
        }
    }
}
