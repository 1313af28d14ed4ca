import Logging
import PostgresNIO

/// A connection lent to one unit of work, as the layers above CofferStore hold it: they
/// pass it to the named operations of the repositories and never see the connection or
/// write a statement. Valid only inside the closure that received it.
public struct StoreSession: Sendable {
    /// How a transaction sees concurrent commits.
    public enum Isolation: Sendable {
        /// PostgreSQL's default: each statement sees what committed before it began.
        case readCommitted
        /// Read-only, one snapshot for the whole transaction (REPEATABLE READ READ ONLY).
        case snapshot
    }

    /// The raw connection, for tests that inspect the database.
    @_spi(Testing) public let connection: PostgresConnection
    let logger: Logger

    init(connection: PostgresConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Runs `body` in a transaction on this session: committed if it returns, rolled back
    /// if it throws, and the error thrown by `body` reaches the caller unchanged. The one
    /// transaction helper of Coffer (``Database/transaction(_:_:)`` calls it too).
    @discardableResult
    public func transaction<Result: Sendable>(
        _ isolation: Isolation = .readCommitted,
        _ body: (StoreSession) async throws -> Result
    ) async throws -> Result {
        do {
            switch isolation {
            case .readCommitted: try await query("BEGIN")
            case .snapshot: try await query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            }
        } catch {
            throw StoreError.map(error)
        }
        do {
            let result = try await body(self)
            try await query("COMMIT")
            return result
        } catch {
            // A ROLLBACK sent on a connection the server closed would wait forever (and
            // the server has rolled back already).
            if !connection.isClosed {
                _ = try? await query("ROLLBACK")
            }
            throw StoreError.map(error)
        }
    }

    /// Runs `statement`; when PostgreSQL refuses it as read-only, closes this connection
    /// before the error reaches the caller. A session keeps the `default_transaction_read_only`
    /// it started with from `ALTER DATABASE`/`ALTER ROLE` settings, and applies a reloaded
    /// server setting only after its next statement, so a pooled connection opened or idle
    /// during a read-only period can refuse writes after it ended (found by the read-only
    /// fault run); ``Database/withSession(retryingReadOnly:_:)`` then tries once more on a
    /// fresh connection. The refused statement did nothing.
    func closingIfReadOnly<Result>(_ statement: () async throws -> Result) async throws -> Result {
        do {
            return try await statement()
        } catch where (StoreError.map(error) as? StoreError)?.code == .readOnly {
            if !connection.isClosed { try? await connection.close() }
            throw StoreError.map(error)
        }
    }

    /// Proves that the statement just run on this session committed. A statement outside
    /// a transaction commits when PostgreSQL processes the Sync after it, but PostgresNIO
    /// hands back its rows at CommandComplete, before that: a server that ends the session
    /// in between (a fast shutdown) sends those rows, then an error, and never commits.
    /// PostgresNIO runs the next query on a connection only after the previous one's
    /// ReadyForQuery, which the server sends after the commit; so a trivial query that
    /// answers proves the commit, and one that fails means the outcome is unknown (found
    /// by the pg-restart fault run: an acknowledged write was lost).
    func confirmCommitted() async throws {
        for try await _ in try await execute(CommitProof()) {}
    }

    @discardableResult
    func query(_ query: PostgresQuery, logger: Logger? = nil) async throws -> PostgresRowSequence {
        try await connection.query(query, logger: logger ?? self.logger)
    }

    func execute<Statement: PostgresPreparedStatement, Row>(
        _ statement: Statement, logger: Logger? = nil
    ) async throws -> AsyncThrowingMapSequence<PostgresRowSequence, Row> where Row == Statement.Row {
        try await connection.execute(statement, logger: logger ?? self.logger)
    }

    /// Runs `body` holding a session-level advisory lock (migrations and key setup, which
    /// must not run twice at once across replicas).
    public func withAdvisoryLock<Result: Sendable>(_ key: Int64, _ body: () async throws -> Result) async throws -> Result {
        try await query("SELECT pg_advisory_lock(\(key))")
        do {
            let result = try await body()
            try await query("SELECT pg_advisory_unlock(\(key))")
            return result
        } catch {
            if !connection.isClosed { _ = try? await query("SELECT pg_advisory_unlock(\(key))") }
            throw error
        }
    }
}

/// `SELECT 1` as a named prepared statement: parsed once per connection, not on every
/// request that proves its commit.
struct CommitProof: PostgresPreparedStatement {
    static let name = "coffer_commit_proof_v1"
    static let sql = "SELECT 1"
    typealias Row = Int32

    func makeBindings() throws -> PostgresBindings { PostgresBindings() }
    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int32.self) }
}
