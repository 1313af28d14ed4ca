import CofferCore
@_spi(Testing) import CofferStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// A value is sealed for its owner's UUID (CONTRACT §4, associated data). A replica
/// remembers the UUIDs of owners it wrote to; a stack deleted and made again under the same
/// id has a new UUID, and a write through the stale hint must be sealed again for the new
/// one (`owner_changed`), never stored under the old binding.
@Suite struct OwnerIdentityTests {
    @Test func aStackRemadeUnderTheSameIdGetsValuesSealedForItsNewIdentity() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker)
            func put(_ value: String) async throws -> HTTPResponse.Status {
                try await fixture.request(.put, "/api/v1/stacks/app/config/A", token: writer,
                                          json: ["type": "ENVIRONMENT_VARIABLE", "value": value]).status
            }
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            #expect(try await put("first") == .created)
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app", token: writer).status == .noContent)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            #expect(try await put("second") == .created)

            let element = try await fixture.request(.get, "/api/v1/stacks/app/config/A", token: writer)
            #expect(element.status == .ok)
            #expect(element.json["value"] as? String == "second")
            let runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            #expect(runtime.status == .ok, "\(runtime.text)")
            #expect(runtime.text.contains("second"))
            let (owner, stored) = try await fixture.database.withConnection { connection in
                let row = try await connection.query(
                    "SELECT o.uuid, e.owner_id FROM config_owners o JOIN config_elements e ON e.config_id = 'A' WHERE o.id = 'app'",
                    logger: Logger(label: "t")
                ).collect().first!
                return try row.decode((UUID, UUID).self)
            }
            #expect(owner == stored)
        }
    }
}
