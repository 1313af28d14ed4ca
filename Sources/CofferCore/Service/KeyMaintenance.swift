import Logging
import ServiceLifecycle

/// Background key work of one replica, once a second: reload the keyring when another
/// process changed keys, run destruction jobs no other replica runs, and rotate data keys
/// older than the rotation period.
public struct KeyMaintenance: Service {
    let lifecycle: KeyLifecycle
    let rotationPeriod: Int?
    let logger: Logger

    public init(lifecycle: KeyLifecycle, rotationPeriod: Int?, logger: Logger) {
        self.lifecycle = lifecycle
        self.rotationPeriod = rotationPeriod
        self.logger = logger
    }

    public func run() async throws {
        var ticks = 0
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await lifecycle.reloadIfChanged()
                if let rotationPeriod, ticks % 60 == 0 {
                    try await lifecycle.rotateExpiredDataKeys(olderThan: rotationPeriod)
                }
                try await lifecycle.runPendingJobs(shouldStop: { Task.isShuttingDownGracefully || Task.isCancelled })
            } catch {
                logger.warning("key maintenance failed; retrying", metadata: ["error": "\(error)"])
            }
            ticks += 1
            try? await Task.sleep(for: .seconds(1))
        }
    }
}
