import CofferCore
import CofferCrypto
import CofferHTTP
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import PostgresNIO

/// The real application over a fresh migrated database, driven in-process.
struct HTTPFixture: Sendable {
    static let logger = Logger(label: "test")
    let client: any TestClientProtocol
    let apiKeys: APIKeyService
    let keys: KeyLifecycle
    let database: Database

    /// Migrates a fresh database with the primary test key, then drives the application
    /// `coffer serve` runs (the same builder, background work included) in-process.
    static func with(limits: CofferLimits = CofferLimits(), _ body: @escaping @Sendable (HTTPFixture) async throws -> Void) async throws {
        try await withTestDatabase(template: "migrated-primary", prepare: migrated) { testDatabase in
            let root = RSARootKey(privateKey: TestKeys.primary)
            let database = Database(settings: testDatabase.settings, logger: logger)
            // Checked on a connection of its own, as `serve` does: the pool runs only once
            // the application does.
            let setup = try await testDatabase.connect()
            let services: CofferServices
            do {
                _ = try await Migrator(root: root, logger: logger).run(on: setup)
                services = try await CofferServices.build(CofferSettings(root: root, destructionBatchSize: 7, limits: limits), database: database, checkingOn: setup, logger: logger)
                await setup.close()
            } catch {
                await setup.close()
                throw error
            }
            let app = CofferApplication.build(services: services, logger: logger)
            try await app.test(.router) { client in
                try await body(HTTPFixture(client: client, apiKeys: services.apiKeys, keys: services.keys, database: database))
            }
        }
    }

    /// The first value of the first row of `sql`, read as an operator with psql would.
    func scalar<T: PostgresDecodable & Sendable>(_ sql: String, as type: T.Type) async throws -> T {
        try await database.withConnection { connection in
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "t")).collect().first!.decode(T.self)
        }
    }

    /// A token for a new API key of `role` on `space`.
    func token(_ role: Role, space: String = "root") async throws -> String {
        try await tokenAndKey(role, space: space).token
    }

    /// A token and the id of its new API key of `role` on `space`.
    func tokenAndKey(_ role: Role, space: String = "root") async throws -> (token: String, keyID: String) {
        let created = try await apiKeys.create(name: "test-\(role.rawValue)", space: space, role: role)
        let response = try await request(.post, "/api/v1/auth/token", json: ["api_key_id": created.record.id, "api_key_secret": created.secret])
        guard response.status == .ok, let token = response.json["token"] as? String else {
            throw TestFailure("token request answered \(response.status)")
        }
        return (token, created.record.id)
    }

    struct Reply {
        let status: HTTPResponse.Status
        let body: Data
        var requestID: String? = nil
        var headers = HTTPFields()
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
        var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
    }

    func request(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, json: Any? = nil, rawBody: Data? = nil, authorization: String? = nil,
                 requestID: String? = nil) async throws -> Reply {
        var headers = HTTPFields()
        if let requestID { headers[HTTPField.Name("X-Request-Id")!] = requestID }
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let authorization { headers[.authorization] = authorization }
        var body: ByteBuffer?
        if let json {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: json))
        } else if let rawBody {
            headers[.contentType] = "application/json"
            body = ByteBuffer(bytes: rawBody)
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, body: Data(buffer: response.body), requestID: response.headers[HTTPField.Name("X-Request-Id")!],
                  headers: response.headers)
        }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension HTTPFixture {
    /// Migrates a database with the primary test root: the template each fixture copies
    /// (the fixture's own migrate then only verifies the root).
    @Sendable static func migrated(_ testDatabase: TestDatabase) async throws {
        let database = try await testDatabase.connect()
        do {
            _ = try await Migrator(root: RSARootKey(privateKey: TestKeys.primary), logger: logger).run(on: database)
            await database.close()
        } catch {
            await database.close()
            throw error
        }
    }
}
