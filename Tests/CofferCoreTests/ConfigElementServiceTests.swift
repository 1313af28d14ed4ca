import CofferCore
import CofferCrypto
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Config elements: sealed values bound to their element, write-only values, input checks.
@Suite struct ConfigElementServiceTests {
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
            let listed = try await fixture.services.elements.listElements(.stack, ownerID: "app", by: DomainFixture.principal(.read)).items
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
}
