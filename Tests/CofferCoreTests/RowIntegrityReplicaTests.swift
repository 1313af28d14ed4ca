import CofferCore
import CofferKeys
import CofferTestSupport
import Testing

/// A replica that has not loaded another replica's rotation yet codes the rows it writes
/// under the active integrity key version, not the one it still holds: the write confirms
/// the version inside its transaction and, finding it retired, reloads and codes again. So
/// no row is written under a version a destruction job may already have moved rows off.
@Suite struct RowIntegrityReplicaTests {
    @Test func aStaleReplicaCodesNewRowsUnderTheActiveIntegrityVersion() async throws {
        try await DomainFixture.with { fixture, _ in
            func replica() async throws -> CofferServices {
                try await CofferServices.build(CofferSettings(root: RSARootKey(privateKey: TestKeys.primary)), database: fixture.database, logger: DomainFixture.logger)
            }
            let existing = try await fixture.apiKeys.create(name: "existing", space: "root", role: .read)
            // Three replicas loaded before the rotation, one for each kind of write.
            let (creating, creatingKMS, revoking) = (try await replica(), try await replica(), try await replica())
            _ = try await fixture.services.keys.rotate(rewrap: false)
            #expect(creating.keyring.activeVersion(of: .integrity) == 1, "the replicas have not reloaded")

            let created = try await creating.apiKeys.create(name: "late", space: "root", role: .read)
            #expect(created.record.macVersion == 2)
            let kmsKey = try await creatingKMS.kms.create(KMSKeyInput(name: "late-key"), by: DomainFixture.principal(.admin))
            #expect(kmsKey.macVersion == 2)
            try await revoking.apiKeys.revoke(id: existing.record.id)
            let revoked = try await fixture.apiKeys.list().items.first { $0.id == existing.record.id }
            #expect(revoked?.macVersion == 2 && revoked?.revokedAt != nil)
        }
    }
}
