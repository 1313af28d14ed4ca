import CofferCore
import CofferCrypto
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

/// Stacks and contexts.
@Suite struct OwnerServiceTests {
    let writer = DomainFixture.principal(.write)
    let worker = DomainFixture.principal(.worker)

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
