import CofferCore
import CofferCrypto
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Runtime config resolution and the roles that may read it.
@Suite struct RuntimeConfigResolverTests {
    let writer = DomainFixture.principal(.write)
    let worker = DomainFixture.principal(.worker)

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
}
