import CofferStore
import Foundation
import Logging
import Synchronization

/// The ids of revoked API keys, which token verification refuses even for unexpired,
/// cached tokens. Each replica refreshes it from the database every ``pollInterval``, so
/// a revocation on one replica takes effect on all of them within that time. It fails
/// closed: once it has not been refreshed for ``staleAfter`` (the database unreachable),
/// tokens are refused with 503 rather than accepted on stale knowledge.
public final class RevocationList: Sendable {
    /// The default of ``staleAfter``.
    public static let defaultStaleAfter: Duration = .seconds(10)
    /// How often ``refresh(from:)`` should run; revocation reaches every replica within it.
    public static let pollInterval: Duration = .seconds(2)
    /// Look back this far on every refresh, for revocations whose transaction committed late.
    private static let overlap: TimeInterval = 60

    private struct State {
        var revoked: Set<String> = []
        var syncedUntil: Date?
    }

    private let state = Mutex(State())
    private let lastRefresh = Mutex<ContinuousClock.Instant?>(nil)
    /// How long the list may go without a refresh before tokens are refused.
    public let staleAfter: Duration
    private let clock: @Sendable () -> ContinuousClock.Instant

    /// - Parameter clock: the time now (tests move it by hand).
    public init(staleAfter: Duration = RevocationList.defaultStaleAfter,
                clock: @escaping @Sendable () -> ContinuousClock.Instant = { ContinuousClock.now }) {
        self.staleAfter = staleAfter
        self.clock = clock
    }

    /// Whether the list was refreshed within ``staleAfter``: only then may tokens be
    /// accepted on it.
    public var isCurrent: Bool {
        guard let last = lastRefresh.withLock({ $0 }) else { return false }
        return clock() - last <= staleAfter
    }

    public func contains(_ apiKeyID: String) -> Bool {
        state.withLock { $0.revoked.contains(apiKeyID) }
    }

    public func insert(_ apiKeyID: String) {
        _ = state.withLock { $0.revoked.insert(apiKeyID) }
    }

    /// Loads every revoked id the first time, then those revoked since the last refresh.
    /// With `integrity`, the first load also counts as revoked every key whose row does not
    /// verify: a key revoked and then un-revoked in SQL stays revoked for a replica that
    /// starts afterwards, as it does for one that saw the revocation (the list only grows).
    public func refresh(from database: Database, logger: Logger, integrity: RowIntegrity? = nil) async throws {
        let started = clock()
        let since = state.withLock { $0.syncedUntil }.map { $0.addingTimeInterval(-Self.overlap) }
        let repository = APIKeyRepository(logger: logger)
        let (ids, now) = try await database.withSession { session -> ([String], Date) in
            let (revoked, now) = try await repository.revoked(since: since, on: session)
            guard since == nil, let integrity else { return (revoked, now) }
            // Only a forged row: one under a key version this process does not hold yet is
            // not revoked for good on the strength of a stale keyring.
            let unverified = try await repository.list(on: session).filter { integrity.check($0) == .forged }.map(\.id)
            return (revoked + unverified, now)
        }
        state.withLock { state in
            state.revoked.formUnion(ids)
            state.syncedUntil = now
        }
        // Current as of when the read began: a slow answer does not buy extra time.
        lastRefresh.withLock { last in last = max(last ?? started, started) }
    }
}
