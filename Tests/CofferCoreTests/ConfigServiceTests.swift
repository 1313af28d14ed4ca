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
        try await withTestDatabase { testDatabase in
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

@Suite struct ConfigServiceTests {
    let writer = DomainFixture.principal(.write)
    let worker = DomainFixture.principal(.worker)

    @Test func valuesRoundTripAndWriteOnlyValuesAreWithheld() async throws {
        try await DomainFixture.with { fixture, _ in
            try await fixture.stack("app")
            try await fixture.set(.stack, "app", "PLAIN", "visible")
            try await fixture.set(.stack, "app", "SECRET", "hunter2", writeOnly: true)
            let file = Data("line one\nline two\n".utf8)
            let (fileView, created) = try await fixture.services.elements.putElement(
                .stack, ownerID: "app", configID: "conf/app.ini",
                ConfigElementInput(type: .fileMount, value: file.base64EncodedString(), writeOnly: false, description: "ini"),
                by: writer
            )
            #expect(created)
            #expect(fileView.checksum == Hex.encode(Array(SHA256Hasher.hash(file))))
            let listed = try await fixture.services.elements.listElements(.stack, ownerID: "app", by: DomainFixture.principal(.read))
            #expect(listed.map(\.id) == ["PLAIN", "SECRET", "conf/app.ini"])
            #expect(listed[0].value == "visible")
            #expect(listed[1].value == nil)
            #expect(listed[1].writeOnly)
            #expect(listed[1].checksum == Hex.encode(Array(SHA256Hasher.hash(Data("hunter2".utf8)))))
            #expect(listed[2].value == file.base64EncodedString())
            // Replacing is not creating.
            let (_, createdAgain) = try await fixture.services.elements.putElement(
                .stack, ownerID: "app", configID: "PLAIN",
                ConfigElementInput(type: .environmentVariable, value: "changed", writeOnly: false, description: ""), by: writer
            )
            #expect(!createdAgain)
        }
    }

    @Test func runtimeConfigResolvesStackThenContextsByPriorityThenId() async throws {
        try await DomainFixture.with { fixture, _ in
            try await fixture.stack("app")
            for context in ["alpha", "beta", "gamma"] { try await fixture.context(context) }
            try await fixture.set(.stack, "app", "A", "from-stack")
            try await fixture.set(.context, "alpha", "A", "from-alpha")
            try await fixture.set(.context, "alpha", "B", "from-alpha")
            try await fixture.set(.context, "beta", "B", "from-beta")
            try await fixture.set(.context, "beta", "C", "from-beta", writeOnly: true)
            try await fixture.set(.context, "gamma", "C", "from-gamma")
            try await fixture.set(.context, "gamma", "D", "from-gamma")
            // beta has the highest priority (0); alpha and gamma tie at 5, broken by id.
            try await fixture.services.attachments.attach(stackID: "app", contextID: "gamma", priority: 5, by: writer)
            try await fixture.services.attachments.attach(stackID: "app", contextID: "alpha", priority: 5, by: writer)
            try await fixture.services.attachments.attach(stackID: "app", contextID: "beta", priority: 0, by: writer)

            let items = try await fixture.services.runtimeConfig.resolve(stackID: "app", by: worker)
            #expect(items.map { "\($0.id)=\($0.value)@\($0.source)" } == [
                "A=from-stack@stack", "B=from-beta@context:beta", "C=from-beta@context:beta", "D=from-gamma@context:gamma",
            ])
            #expect(items.first { $0.id == "C" }?.writeOnly == true)

            try await fixture.services.attachments.detach(stackID: "app", contextID: "beta", by: writer)
            let after = try await fixture.services.runtimeConfig.resolve(stackID: "app", by: worker)
            #expect(after.map { "\($0.id)@\($0.source)" } == ["A@stack", "B@context:alpha", "C@context:gamma", "D@context:gamma"])
        }
    }

    @Test func rolesAreEnforced() async throws {
        try await DomainFixture.with { fixture, _ in
            try await fixture.stack("app")
            try await fixture.set(.stack, "app", "A", "1")
            let reader = DomainFixture.principal(.read)
            let admin = DomainFixture.principal(.admin)
            await #expect(throws: CofferError.self) {
                try await fixture.services.elements.putElement(.stack, ownerID: "app", configID: "B",
                    ConfigElementInput(type: .environmentVariable, value: "2", writeOnly: false, description: ""), by: reader)
            }
            await #expect(throws: CofferError.self) { try await fixture.services.runtimeConfig.resolve(stackID: "app", by: admin) }
            await #expect(throws: CofferError.self) { try await fixture.services.elements.listElements(.stack, ownerID: "app", by: worker) }
            #expect(try await fixture.services.runtimeConfig.resolve(stackID: "app", by: worker).count == 1)
            #expect(try await fixture.services.owners.owner(.stack, id: "app", by: worker).id == "app")
        }
    }

    @Test func aValueCopiedToAnotherElementDoesNotOpen() async throws {
        try await DomainFixture.with { fixture, testDatabase in
            try await fixture.stack("app")
            try await fixture.set(.stack, "app", "SOURCE", "secret-a", writeOnly: true)
            try await fixture.set(.stack, "app", "TARGET", "plain-b")
            try await testDatabase.withConnection { connection in
                try await connection.query(
                    """
                    UPDATE config_elements SET sealed_value = (SELECT sealed_value FROM config_elements WHERE config_id = 'SOURCE'),
                        write_only = false
                    WHERE config_id = 'TARGET'
                    """, logger: DomainFixture.logger
                )
            }
            await #expect(throws: SealError.self) {
                try await fixture.services.elements.listElements(.stack, ownerID: "app", by: DomainFixture.principal(.read))
            }
        }
    }

    @Test func duplicatesConflictAndBadInputIsRefused() async throws {
        try await DomainFixture.with { fixture, _ in
            try await fixture.stack("app")
            await #expect(throws: CofferError.self) { try await fixture.stack("app") }
            do {
                try await fixture.stack("app")
            } catch let error as CofferError {
                #expect(error.kind == .conflict)
            }
            for bad in ["", "App", "-x", String(repeating: "a", count: 64), "a_b"] {
                await #expect(throws: CofferError.self, "\(bad)") { try await fixture.stack(bad) }
            }
            for bad in ["1ABC", "A-B", "", "A B"] {
                await #expect(throws: CofferError.self, "\(bad)") { try await fixture.set(.stack, "app", bad, "x") }
            }
            let big = String(repeating: "x", count: ConfigValidation.maximumVariableBytes + 1)
            do {
                try await fixture.set(.stack, "app", "BIG", big)
                Issue.record("oversized value accepted")
            } catch let error as CofferError {
                #expect(error.kind == .tooLarge)
            }
            for path in ["/etc/passwd", "../x", "a/../b", "a//b", "a/./b"] {
                await #expect(throws: CofferError.self, "\(path)") {
                    try await fixture.services.elements.putElement(.stack, ownerID: "app", configID: path,
                        ConfigElementInput(type: .fileMount, value: "eA==", writeOnly: false, description: ""), by: writer)
                }
            }
            await #expect(throws: CofferError.self) { try await fixture.services.owners.owner(.stack, id: "missing", by: writer) }
            await #expect(throws: CofferError.self) { try await fixture.services.attachments.attach(stackID: "app", contextID: "missing", priority: 0, by: writer) }
        }
    }

    @Test func listsPaginateWithOpaqueCursors() async throws {
        try await DomainFixture.with { fixture, _ in
            for index in 0..<7 { try await fixture.stack("s\(index)") }
            var seen: [String] = []
            var cursor: String?
            repeat {
                let page = try await fixture.services.owners.listOwners(.stack, limit: 3, cursor: cursor, by: writer)
                seen += page.items.map(\.id)
                cursor = page.nextCursor
            } while cursor != nil
            #expect(seen == (0..<7).map { "s\($0)" })
            await #expect(throws: CofferError.self) { try await fixture.services.owners.listOwners(.stack, limit: 3, cursor: "%%%", by: writer) }
        }
    }
}

import Crypto

enum SHA256Hasher {
    static func hash(_ data: Data) -> SHA256.Digest { SHA256.hash(data: data) }
}
