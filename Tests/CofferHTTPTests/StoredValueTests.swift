import CofferCore
@_spi(Testing) import CofferStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// A row holding a value this build does not know (written by a newer build, or edited by
/// hand) is an error that names the row, never a default: an element of an unknown type
/// must not be served as an environment variable.
@Suite struct StoredValueTests {
    @Test func anElementOfAnUnknownTypeIsRefusedNotServedAsAnEnvironmentVariable() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/conf%2Fkey.bin", token: writer,
                                              json: ["type": "FILE_MOUNT", "value": Data([0, 1, 2]).base64EncodedString()]).status == .created)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker).status == .ok)

            try await fixture.database.withConnection { connection in
                let logger = Logger(label: "t")
                try await connection.query("ALTER TABLE config_elements DROP CONSTRAINT IF EXISTS config_elements_type_check", logger: logger)
                try await connection.query("UPDATE config_elements SET type = 'SECRET_BLOB'", logger: logger)
            }
            for path in ["/api/v1/stacks/app/runtime-config", "/api/v1/stacks/app/config", "/api/v1/stacks/app/config/conf%2Fkey.bin"] {
                let token = path.hasSuffix("runtime-config") ? worker : writer
                let reply = try await fixture.request(.get, path, token: token)
                #expect(reply.status == .internalServerError, "\(path): \(reply.status) \(reply.text)")
                #expect(reply.errorCode == "internal_error", "\(path)")
                #expect(!reply.text.contains("AAEC"), "\(path) answered with the value")
            }
        }
    }
}
