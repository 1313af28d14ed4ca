import CofferStore
import Foundation
import Logging
import Synchronization

/// The ids of revoked API keys, which token verification refuses even for unexpired,
/// cached tokens. Each replica refreshes it from the database every ``pollInterval``, so
/// a revocation on one replica takes effect on all of them within that time.
public final class RevocationList: Sendable {
    /// How often ``refresh(from:)`` should run; revocation reaches every replica within it.
    public static let pollInterval: Duration = .seconds(2)
    /// Look back this far on every refresh, for revocations whose transaction committed late.
    private static let overlap: TimeInterval = 60

    private struct State {
        var revoked: Set<String> = []
        var syncedUntil: Date?
    }

    private let state = Mutex(State())

    public init() {}

    public func contains(_ apiKeyID: String) -> Bool {
        state.withLock { $0.revoked.contains(apiKeyID) }
    }

    public func insert(_ apiKeyID: String) {
        _ = state.withLock { $0.revoked.insert(apiKeyID) }
    }

    /// Loads every revoked id the first time, then those revoked since the last refresh.
    public func refresh(from database: Database, logger: Logger) async throws {
        let since = state.withLock { $0.syncedUntil }.map { $0.addingTimeInterval(-Self.overlap) }
        let repository = APIKeyRepository(logger: logger)
        let (ids, now) = try await database.withSession { try await repository.revoked(since: since, on: $0) }
        state.withLock { state in
            state.revoked.formUnion(ids)
            state.syncedUntil = now
        }
    }
}
