import CofferCore
import CofferCrypto
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// A migrated test database with the domain services over it, built as `coffer serve`
/// builds them.
struct DomainFixture {
    static let logger = Logger(label: "test")
    let database: Database
    let services: CofferServices
    var apiKeys: APIKeyService { services.apiKeys }

    static func with<T>(_ body: (DomainFixture, TestDatabase) async throws -> T) async throws -> T {
        try await withTestDatabase(template: "migrated-primary", prepare: migrated) { testDatabase in
            let database = try await testDatabase.connect()
            do {
                let root = RSARootKey(privateKey: TestKeys.primary)
                _ = try await Migrator(root: root, logger: logger).run(on: database)
                let services = try await CofferServices.build(CofferSettings(root: root), database: database, logger: logger)
                let fixture = DomainFixture(database: database, services: services)
                let result = try await body(fixture, testDatabase)
                await database.close()
                return result
            } catch {
                await database.close()
                throw error
            }
        }
    }

    /// Migrates a database with the primary test root: the template each fixture copies
    /// (the fixture's own `coffer migrate` then only verifies the root).
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

    static func principal(_ role: Role, space: String = "root") -> Principal {
        Principal(apiKeyID: "ak_\(role.rawValue)", space: space, role: role, tokenID: "t", expiresAt: Int64.max)
    }

    func stack(_ id: String, labels: [String] = []) async throws {
        _ = try await services.owners.createOwner(.stack, OwnerInput(id: id, name: id, space: "root", labels: labels, description: ""), by: Self.principal(.write))
    }

    func context(_ id: String) async throws {
        _ = try await services.owners.createOwner(.context, OwnerInput(id: id, name: id, space: "root", labels: [], description: ""), by: Self.principal(.write))
    }

    func set(_ kind: OwnerKind, _ owner: String, _ name: String, _ value: String, writeOnly: Bool = false) async throws {
        _ = try await services.elements.putElement(kind, ownerID: owner, configID: name,
                                        ConfigElementInput(type: .environmentVariable, value: value, writeOnly: writeOnly, description: ""),
                                        by: Self.principal(.write))
    }
}

import Crypto

enum SHA256Hasher {
    static func hash(_ data: Data) -> SHA256.Digest { SHA256.hash(data: data) }
}
