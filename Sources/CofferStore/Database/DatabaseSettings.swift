import Foundation
import NIOSSL
import PostgresNIO

/// Where and how to reach PostgreSQL, parsed from `DATABASE_URL`
/// (`postgres://user:password@host:port/db?sslmode=...`).
public struct DatabaseSettings: Sendable {
    /// libpq's `sslmode` values that Coffer honours.
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode
    /// A CA bundle for `verify-ca` / `verify-full` (`sslrootcert=`); system roots otherwise.
    public var sslRootCertificateFile: String?
    /// Bound on connecting and on each database operation of the request path.
    public var connectTimeout: Duration = .seconds(5)
    /// Pool size per process.
    public var maximumConnections = 20

    /// Parses a `DATABASE_URL`. The error never repeats the URL, which holds a password.
    public init(url: String) throws {
        let reason = "expected postgres://user:password@host:port/database?sslmode=disable|prefer|require|verify-full"
        guard let components = URLComponents(string: url.trimmingCharacters(in: .whitespaces)),
              let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme.lowercased())
        else { throw DatabaseSettingsError(reason: "is not a postgres:// URL; \(reason)") }
        guard let host = components.host, !host.isEmpty else {
            throw DatabaseSettingsError(reason: "has no host; \(reason)")
        }
        guard let user = components.user, !user.isEmpty else {
            throw DatabaseSettingsError(reason: "has no user name; \(reason)")
        }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else {
            throw DatabaseSettingsError(reason: "has no database name; \(reason)")
        }
        if let port = components.port, !(1...65535).contains(port) {
            throw DatabaseSettingsError(reason: "has a port outside 1-65535; \(reason)")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user?.removingPercentEncoding ?? user
        self.password = components.password?.removingPercentEncoding
        self.database = path.removingPercentEncoding ?? path
        self.sslMode = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: item.value ?? "") else {
                    throw DatabaseSettingsError(reason: "has an unknown sslmode; use one of disable, prefer, require, verify-ca, verify-full")
                }
                self.sslMode = mode
            case "sslrootcert":
                self.sslRootCertificateFile = item.value
            case "connect_timeout":
                guard let seconds = Int(item.value ?? ""), seconds > 0 else {
                    throw DatabaseSettingsError(reason: "has a connect_timeout that is not a positive number of seconds")
                }
                self.connectTimeout = .seconds(seconds)
            default:
                throw DatabaseSettingsError(reason: "has an unsupported parameter `\(item.name)`; supported: sslmode, sslrootcert, connect_timeout")
            }
        }
    }

    /// The host and database, safe to print.
    public var redactedDescription: String { "\(host):\(port)/\(database) (sslmode=\(sslMode.rawValue))" }

    func tlsConfiguration() -> TLSConfiguration {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        case .disable, .prefer, .require:
            tls.certificateVerification = .none
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
        case .verifyFull:
            tls.certificateVerification = .fullVerification
        }
        if let file = sslRootCertificateFile {
            tls.trustRoots = .file(file)
        }
        return tls
    }

    /// Configuration of the connection pool used by `serve`.
    public func clientConfiguration() -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(tlsConfiguration())
        case .require, .verifyCA, .verifyFull: tls = .require(tlsConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls
        )
        configuration.options.connectTimeout = connectTimeout
        // Pool settings. No keep-alive: PostgresNIO arms a keep-alive timer each time a
        // connection goes idle and cancels it on the next lease, task spawns and sleeps per
        // query (postgres-nio issue #511). A connection the server or the network closed is
        // found by its close event or, at worst, by the operation deadline, and replaced.
        // The pool grows on demand from no connection (`minimumConnections` 0, the
        // default): with a minimum above 0 (tried: minimum = maximum, which also saves the
        // idle timers) PostgresNIO 1.33.2's pool fails a precondition and stops the process
        // when connections drop below the minimum and a lease arrives
        // (`createNewDemandConnectionIfPossible`; found by the PostgreSQL restart fault run).
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        configuration.options.keepAliveBehavior = nil
        if sslMode == .verifyFull { configuration.options.tlsServerName = host }
        return configuration
    }

    /// Configuration of a single connection, used by the CLI commands.
    public func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        switch sslMode {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: tlsConfiguration()))
        case .require, .verifyCA, .verifyFull: tls = .require(try NIOSSLContext(configuration: tlsConfiguration()))
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database, tls: tls
        )
        configuration.options.connectTimeout = .nanoseconds(connectTimeout.nanoseconds)
        if sslMode == .verifyFull { configuration.options.tlsServerName = host }
        return configuration
    }
}

/// `DATABASE_URL` could not be parsed. The reason never contains the URL.
public struct DatabaseSettingsError: Error, CustomStringConvertible, Sendable {
    public let reason: String
    public var description: String { "DATABASE_URL \(reason)" }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
