import CofferCore
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// The `integrity` key goes through the key lifecycle like the other data keys: after a
/// rotation and the destruction of its first version, every API key row still verifies
/// (under the new version), and a row that did not verify is not vouched for on the way.
@Suite struct RowIntegrityRouteTests {
    @Test func destroyingAnIntegrityKeyVersionMovesEveryAuthenticRowToTheActiveOne() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let runner = try await fixture.apiKeys.create(name: "runner", space: "root", role: .read)
            let tampered = try await fixture.apiKeys.create(name: "tampered", space: "root", role: .read)
            _ = try await fixture.scalar("UPDATE api_keys SET role = 'admin' WHERE id = '\(tampered.record.id)' RETURNING 1", as: Int.self)

            #expect(try await fixture.request(.post, "/api/v1/keys/rotate", token: admin, json: ["rewrap": false]).status == .ok)
            let destroy = try await fixture.request(.delete, "/api/v1/keys/versions/integrity-v1", token: admin)
            #expect(destroy.status == .accepted, "\(destroy.text)")
            // The job runs here or on the fixture's own key maintenance, whichever takes it first.
            var state = ""
            for _ in 0..<300 where state != "destroyed" {
                _ = try await fixture.keys.runPendingJobs()
                state = try await fixture.scalar("SELECT state FROM data_encryption_keys WHERE purpose = 'integrity' AND version = 1", as: String.self)
                if state != "destroyed" { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(state == "destroyed")
            #expect(try await fixture.scalar("SELECT mac_version FROM api_keys WHERE id = '\(runner.record.id)'", as: Int32.self) == 2)
            #expect(try await fixture.scalar("SELECT mac_version FROM api_keys WHERE id = '\(tampered.record.id)'", as: Int32.self) == 1)

            let runnerLogsIn = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": runner.record.id, "api_key_secret": runner.secret]).status == .ok
            #expect(runnerLogsIn)
            let tamperedRefused = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": tampered.record.id, "api_key_secret": tampered.secret]).status == .unauthorized
            #expect(tamperedRefused)
            #expect(try await fixture.request(.get, "/api/v1/api-keys", token: admin).status == .ok)
        }
    }

    /// A KMS key edited in SQL (moved to another team's space and enabled again after an
    /// admin disabled it) is treated as absent: nobody encrypts with it, nobody sees it;
    /// put back as it was, it works as before.
    @Test func aKMSKeyEditedInTheDatabaseIsTreatedAsAbsent() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: admin, json: ["id": "team-b", "name": "Team B"]).status == .created)
            try await KMSRouteTests.createKey(fixture, "payments", token: admin)
            #expect(try await fixture.request(.patch, "/api/v1/kms/keys/payments", token: admin, json: ["enabled": false]).status == .ok)
            let teamB = try await fixture.token(.write, space: "team-b")
            let plaintext = ["plaintext": Data("card".utf8).base64EncodedString()]
            #expect(try await fixture.request(.post, "/api/v1/kms/keys/payments/encrypt", token: teamB, json: plaintext).status == .notFound)

            _ = try await fixture.scalar("UPDATE kms_keys SET space = 'team-b', enabled = true WHERE name = 'payments' RETURNING 1", as: Int.self)
            let stolen = try await fixture.request(.post, "/api/v1/kms/keys/payments/encrypt", token: teamB, json: plaintext)
            #expect(stolen.status == .notFound, "\(stolen.status) \(stolen.text)")
            #expect(try await fixture.request(.get, "/api/v1/kms/keys/payments", token: admin).status == .notFound)
            #expect(try await fixture.request(.get, "/api/v1/kms/keys", token: admin).items.isEmpty)
            #expect(try await fixture.request(.patch, "/api/v1/kms/keys/payments", token: admin, json: ["enabled": true]).status == .notFound)

            _ = try await fixture.scalar("UPDATE kms_keys SET space = 'root', enabled = false WHERE name = 'payments' RETURNING 1", as: Int.self)
            #expect(try await fixture.request(.get, "/api/v1/kms/keys/payments", token: admin).status == .ok)
            #expect(try await fixture.request(.patch, "/api/v1/kms/keys/payments", token: admin, json: ["enabled": true]).status == .ok)
            #expect(try await fixture.request(.post, "/api/v1/kms/keys/payments/encrypt", token: admin, json: plaintext).status == .ok)
        }
    }
}
