import ServiceLifecycle

/// Writes the events of gathered refusals (``RefusalAggregator``) as their windows end,
/// and every one still open when the service group stops, so no counted refusal is lost
/// to a graceful shutdown.
public struct RefusalFlusher: Service {
    let audit: AuditLog

    public init(audit: AuditLog) {
        self.audit = audit
    }

    public func run() async throws {
        // A service that returns stops its whole group: without refusals to gather it waits.
        guard let refusals = audit.refusals else {
            try? await gracefulShutdown()
            return
        }
        let pause = Duration.milliseconds(min(5000, refusals.window * 1000 / 4))
        let audit = self.audit
        // The pool stops after this service (it comes first in the group), so the last
        // flush still has the database.
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: pause)
                await audit.flushRefusals()
            }
        }
        await audit.flushRefusals(all: true)
    }
}
