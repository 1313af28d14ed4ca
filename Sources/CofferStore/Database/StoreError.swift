import PostgresNIO

/// A database failure, reduced to what callers act on. Never carries SQL parameters.
public struct StoreError: Error, Hashable, CustomStringConvertible, Sendable {
    public enum Code: String, Sendable {
        /// PostgreSQL could not be reached or the operation timed out.
        case unavailable
        /// A unique constraint refused the write.
        case conflict
        /// A referenced row does not exist.
        case missingReference
        /// The database is read-only or refused the write for lack of space.
        case readOnly
        /// The server refused a value (SQLSTATE class 22: bad encoding, out of range).
        case invalidData
        /// A row holds a value this build does not know (a state or type outside its enum);
        /// the reason names the row.
        case unknownValue
        /// Anything else the server reported.
        case failed
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public static func == (lhs: StoreError, rhs: StoreError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
    public var description: String { reason }

    /// Maps any error thrown by PostgresNIO to a ``StoreError``; other errors pass through.
    public static func map(_ error: any Error) -> any Error {
        if error is StoreError { return error }
        if let transaction = error as? PostgresTransactionError {
            if let inner = transaction.closureError { return map(inner) }
            return StoreError(.unavailable, "the database transaction could not complete")
        }
        guard let psql = error as? PSQLError else { return error }
        if let state = psql.serverInfo?[.sqlState] {
            let message = psql.serverInfo?[.message] ?? "server error"
            switch state {
            case "23505": return StoreError(.conflict, "unique constraint violated")
            case "23503": return StoreError(.missingReference, "referenced row does not exist")
            case "25006", "53100": return StoreError(.readOnly, "the database refused the write: \(message)")
            case let s where s.hasPrefix("22"):
                return StoreError(.invalidData, "the database refused a value: \(message)")
            case let s where s.hasPrefix("08") || s.hasPrefix("57P"):
                return StoreError(.unavailable, "the database connection failed: \(message)")
            case "28P01", "28000":
                return StoreError(.unavailable, "the database refused the credentials: \(message)")
            case "42P01":
                return StoreError(.failed, "the database has no Coffer schema (\(message)); run `coffer migrate` first")
            case "3D000":
                return StoreError(.unavailable, "the database does not exist: \(message)")
            default:
                return StoreError(.failed, "database error \(state): \(message)")
            }
        }
        switch psql.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .poolClosed, .uncleanShutdown:
            return StoreError(.unavailable, "the database is unreachable")
        default:
            return StoreError(.unavailable, "the database connection failed (\(psql.code))")
        }
    }
}
