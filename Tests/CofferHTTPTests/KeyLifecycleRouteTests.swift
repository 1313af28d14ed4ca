import CofferCore
@_spi(Testing) import CofferStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// Rotation, rewrap and destruction through the API, checked in SQL.
@Suite struct KeyLifecycleRouteTests {
    @Test func rotateRewrapAndDestroyReEncryptEverythingAndEraseTheVersion() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            // 30 elements with 2 versions each, all under database-v1.
            for index in 0..<30 {
                for round in 0..<2 {
                    let reply = try await fixture.request(.put, "/api/v1/stacks/app/config/VAR_\(index)", token: writer,
                                                          json: ["type": "ENVIRONMENT_VARIABLE", "value": "value-\(index)-\(round)", "write_only": index % 2 == 0])
                    #expect(reply.status == .created || reply.status == .ok)
                }
            }
            var listed = try await fixture.request(.get, "/api/v1/keys", token: admin)
            #expect(listed.items.first { $0["id"] as? String == "database-v1" }?["values"] as? Int == 90)

            // Only an admin of the root space manages keys: not a writer, not the admin of a child space.
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: admin, json: ["id": "team", "name": "Team"]).status == .created)
            let teamAdmin = try await fixture.token(.admin, space: "team")
            #expect(try await fixture.request(.get, "/api/v1/keys", token: writer).status == .forbidden)
            #expect(try await fixture.request(.get, "/api/v1/keys", token: teamAdmin).status == .forbidden)
            #expect(try await fixture.request(.post, "/api/v1/keys/rotate", token: teamAdmin, json: [:]).status == .forbidden)
            // The active version cannot be destroyed.
            #expect(try await fixture.request(.delete, "/api/v1/keys/versions/database-v1", token: admin).status == .conflict)
            #expect(try await fixture.request(.delete, "/api/v1/keys/versions/nonsense", token: admin).status == .badRequest)

            let rotated = try await fixture.request(.post, "/api/v1/keys/rotate", token: admin, json: ["rewrap": false])
            #expect(rotated.status == .ok, "\(rotated.text)")
            #expect(rotated.json["kek_version"] as? Int == 2)
            // New writes use database-v2; old values still open.
            _ = try await fixture.request(.put, "/api/v1/stacks/app/config/NEW", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "fresh"])
            #expect(try await fixture.scalar("SELECT dek_version FROM config_elements WHERE config_id = 'NEW'", as: Int32.self) == 2)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker).items.count == 31)

            // kek-v1 still seals database-v1 and audit-v1: it cannot be destroyed before a rewrap.
            #expect(try await fixture.request(.delete, "/api/v1/keys/versions/kek-v1", token: admin).status == .conflict)
            let rewrapped = try await fixture.request(.post, "/api/v1/keys/rotate", token: admin, json: ["rewrap": true])
            #expect(rewrapped.json["rewrapped"] as? Int == 6)  // database, audit and integrity v1 and v2
            #expect(rewrapped.json["erased_kek_versions"] as? [Int] == [1, 2])
            #expect(try await fixture.scalar("SELECT count(*) FROM key_encryption_keys WHERE wrapped_key IS NOT NULL", as: Int.self) == 1)

            // Destroy database-v1: a job re-encrypts 90 values in batches of 7, then erases it.
            let destroy = try await fixture.request(.delete, "/api/v1/keys/versions/database-v1", token: admin)
            #expect(destroy.status == .accepted, "\(destroy.text)")
            let job = try #require(destroy.json["job"] as? [String: Any])
            #expect(job["total"] as? Int == 90 && job["state"] as? String == "running")
            // Asking again returns the same job.
            #expect((try await fixture.request(.delete, "/api/v1/keys/versions/database-v1", token: admin).json["job"] as? [String: Any])?["id"] as? String == job["id"] as? String)
            #expect(try await fixture.keys.runPendingJobs().count == 1)
            let jobs = try await fixture.request(.get, "/api/v1/keys/destruction-jobs", token: admin)
            #expect(jobs.items.first?["state"] as? String == "completed")
            #expect(jobs.items.first?["done"] as? Int == 90)
            // audit-v1 coded the events written so far: it is kept for `coffer audit verify`.
            let auditDestroy = try await fixture.request(.delete, "/api/v1/keys/versions/audit-v1", token: admin)
            #expect(auditDestroy.status == .conflict && auditDestroy.text.contains("audit event"), "\(auditDestroy.text)")

            #expect(try await fixture.scalar("SELECT count(*) FROM config_elements WHERE dek_version = 1", as: Int.self) == 0)
            #expect(try await fixture.scalar("SELECT count(*) FROM config_element_versions WHERE dek_version = 1", as: Int.self) == 0)
            #expect(try await fixture.scalar("SELECT count(*) FROM data_encryption_keys WHERE purpose = 'database' AND version = 1 AND sealed_key IS NULL AND state = 'destroyed'", as: Int.self) == 1)
            listed = try await fixture.request(.get, "/api/v1/keys", token: admin)
            #expect(listed.items.first { $0["id"] as? String == "database-v1" }?["state"] as? String == "destroyed")

            // Every value, current and historical, still reads back.
            let runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            let values = Dictionary(uniqueKeysWithValues: runtime.items.map { ($0["id"] as! String, $0["value"] as! String) })
            for index in 0..<30 { #expect(values["VAR_\(index)"] == "value-\(index)-1") }
            let history = try await fixture.request(.get, "/api/v1/stacks/app/config/VAR_1/versions", token: writer)
            #expect(history.items.map { $0["value"] as? String } == ["value-1-1", "value-1-0"])
            #expect(try await fixture.request(.delete, "/api/v1/keys/versions/database-v1", token: admin).status == .conflict)

            // The audit trail shows the key operations.
            let audit = try await fixture.request(.get, "/api/v1/audit-events?resource=key:*", token: admin)
            #expect(Set(audit.items.compactMap { $0["action"] as? String }).isSuperset(of: ["keys.destroy", "keys.destroyed"]))
        }
    }

    @Test func dataKeysOlderThanThePeriodAreRotatedOnceEvenByReplicasRacing() async throws {
        try await HTTPFixture.with { fixture in
            #expect(try await fixture.keys.rotateExpiredDataKeys(olderThan: 86_400).isEmpty)
            try await fixture.database.withConnection { connection in
                try await connection.query("UPDATE data_encryption_keys SET created_at = now() - interval '2 days'", logger: Logger(label: "t"))
            }
            // Two "replicas" at once: exactly one rotation of each purpose.
            let keys = fixture.keys
            async let first = keys.rotateExpiredDataKeys(olderThan: 86_400)
            async let second = keys.rotateExpiredDataKeys(olderThan: 86_400)
            let rotated = try await first + second
            #expect(rotated.sorted() == ["audit-v2", "database-v2", "integrity-v2"])
            #expect(try await keys.rotateExpiredDataKeys(olderThan: 86_400).isEmpty)
            #expect(try await fixture.scalar("SELECT count(*) FROM data_encryption_keys WHERE state = 'active' AND version = 2", as: Int.self) == 3)
            // The KEK is unchanged; new writes use the new data key at once on this replica.
            #expect(try await fixture.scalar("SELECT count(*) FROM key_encryption_keys", as: Int.self) == 1)
            #expect(keys.keyring.activeVersion(of: .database) == 2)
        }
    }
}
