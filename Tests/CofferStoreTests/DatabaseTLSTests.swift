@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// `sslmode=verify-full` against the test PostgreSQL server, which also accepts TLS with a
/// certificate for localhost and 127.0.0.1 signed by a throwaway CA.
@Suite struct DatabaseTLSTests {
    static func url(host: String, query: String) throws -> String {
        var components = URLComponents(string: try TestEnvironment.databaseURL())!
        components.host = host
        components.query = query
        return components.string!
    }

    static func connectionUsesTLS(_ url: String) async throws -> Bool {
        let database = try await Database.connect(settings: try DatabaseSettings(url: url), logger: Logger(label: "t"), operationTimeout: .seconds(20))
        defer { Task { await database.close() } }
        return try await database.withConnection { connection in
            try await connection.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", logger: Logger(label: "t"))
                .collect().first!.decode(Bool.self)
        }
    }

    @Test func verifyFullWithTheServersCAConnectsOverTLS() async throws {
        let ca = try TestEnvironment.postgresCA()
        #expect(try await Self.connectionUsesTLS(Self.url(host: "localhost", query: "sslmode=verify-full&sslrootcert=\(ca)")))
        #expect(try await Self.connectionUsesTLS(Self.url(host: "127.0.0.1", query: "sslmode=require")))
        #expect(try await !Self.connectionUsesTLS(Self.url(host: "127.0.0.1", query: "sslmode=disable")))
    }

    @Test func verifyFullRefusesACertificateFromAnotherCA() async throws {
        let folder = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let other = folder.appendingPathComponent("other-ca.pem").path
        #expect(try await ProcessRunner.shell(
            "openssl req -x509 -newkey rsa:2048 -nodes -keyout '\(folder.path)/k.pem' -out '\(other)' -days 1 -subj /CN=other 2>/dev/null"
        ).status == 0)
        await #expect(throws: StoreError.self) {
            _ = try await Self.connectionUsesTLS(Self.url(host: "localhost", query: "sslmode=verify-full&sslrootcert=\(other)"))
        }
    }
}
