@testable import CofferCore
import CofferCrypto
import CofferKeys
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Testing

/// The builder every process uses: it refuses a database it cannot serve.
@Suite struct CofferServicesTests {
    @Test func aDatabaseWithPendingMigrationsOrAnotherRootKeyIsRefused() async throws {
        try await withTestDatabase { testDatabase in
            let database = try await testDatabase.connect()
            defer { Task { await database.close() } }
            let root = RSARootKey(privateKey: TestKeys.primary)
            do {
                _ = try await CofferServices.build(CofferSettings(root: root), database: database, logger: DomainFixture.logger)
                Issue.record("an unmigrated database was accepted")
            } catch let error as CofferError {
                #expect(error.code == .migrationsPending)
                #expect(error.message.contains("coffer migrate"))
            }
            _ = try await Migrator(root: root, logger: DomainFixture.logger).run(on: database)
            do {
                _ = try await CofferServices.build(CofferSettings(root: RSARootKey(privateKey: TestKeys.other)), database: database, logger: DomainFixture.logger)
                Issue.record("another root key was accepted")
            } catch let error as CofferError {
                #expect(error.code == .rootKeyMismatch)
            }
            let services = try await CofferServices.build(CofferSettings(root: root), database: database, logger: DomainFixture.logger)
            #expect(services.backgroundWork.count == 4)  // revocation refresh, key maintenance, refusal flusher, audit chainer
            #expect(try await services.keys.list().contains { $0.id == "kek-v1" && $0.state == .active })
        }
    }
}

/// The role check: a refusal is `forbidden` and leaves a `denied` event in the audit trail.
@Suite struct AccessControlTests {
    @Test func aRefusalIsForbiddenAndAudited() async throws {
        try await DomainFixture.with { fixture, _ in
            let reader = DomainFixture.principal(.read)
            do {
                _ = try await fixture.services.spaces.create(SpaceInput(id: "team", name: "Team", parent: "root", description: ""), by: reader)
                Issue.record("a reader created a space")
            } catch let error as CofferError {
                #expect(error.code == .forbidden)
            }
            let events = try await fixture.services.audit.list(AuditFilter(action: "space.create"), limit: 10, cursor: nil, by: DomainFixture.principal(.admin))
            #expect(events.items.map(\.outcome) == [.denied])
            #expect(events.items.first?.actor == reader.apiKeyID)
        }
    }
}

/// Spaces: a tree that cannot loop, each change audited.
@Suite struct SpaceServiceTests {
    @Test func spacesNestAndCannotMoveUnderThemselves() async throws {
        try await DomainFixture.with { fixture, _ in
            let admin = DomainFixture.principal(.admin)
            let spaces = fixture.services.spaces
            _ = try await spaces.create(SpaceInput(id: "team", name: "Team", parent: "root", description: ""), by: admin)
            _ = try await spaces.create(SpaceInput(id: "sub", name: "Sub", parent: "team", description: ""), by: admin)
            do {
                _ = try await spaces.update(id: "team", SpacePatch(parent: "sub"), by: admin)
                Issue.record("a space moved under its own child")
            } catch let error as CofferError {
                #expect(error.code == .spaceCycle)
            }
            do {
                _ = try await spaces.create(SpaceInput(id: "x", name: "X", parent: "nowhere", description: ""), by: admin)
                Issue.record("a space was created under a missing parent")
            } catch let error as CofferError {
                #expect(error.code == .unknownSpace)
            }
            #expect(try await spaces.space(id: "sub", by: admin).parent == "team")
            // An admin of `team` sees its subtree, not the root.
            let teamAdmin = DomainFixture.principal(.admin, space: "team")
            #expect(try await spaces.list(limit: 10, cursor: nil, by: teamAdmin).items.map(\.id).sorted() == ["sub", "team"])
        }
    }
}

/// API keys: a secret that authenticates once shown, and revocation that refuses it.
@Suite struct APIKeyServiceTests {
    @Test func aKeyAuthenticatesWithItsSecretUntilRevoked() async throws {
        try await DomainFixture.with { fixture, _ in
            let keys = fixture.services.apiKeys
            let created = try await keys.create(name: "ci", space: "root", role: .worker)
            // Values bound first, so a failure prints no secret.
            let authenticated = try await keys.authenticate(id: created.record.id, secret: created.secret).id
            #expect(authenticated == created.record.id)
            do {
                _ = try await keys.authenticate(id: created.record.id, secret: created.secret + "x")
                Issue.record("a wrong secret authenticated")
            } catch let error as CofferError {
                #expect(error.code == .invalidCredentials)
            }
            #expect(try await keys.list().items.contains { $0.id == created.record.id })
            try await keys.revoke(id: created.record.id)
            do {
                _ = try await keys.authenticate(id: created.record.id, secret: created.secret)
                Issue.record("a revoked key authenticated")
            } catch let error as CofferError {
                #expect(error.code == .invalidCredentials)
            }
        }
    }
}

extension APIKeyServiceTests {
    /// A signer that is down (KMS `Sign` failing).
    struct FailingSigner: TokenSigner {
        let publicKey: RSAPublicKey
        func signRS256(_ signingInput: [UInt8]) async throws -> [UInt8] {
            throw RootKeyError(.unavailable, "the signing key did not answer")
        }
    }

    @Test func aTokenWhoseSignatureFailsIsAuditedAsAFailure() async throws {
        try await DomainFixture.with { fixture, _ in
            let created = try await fixture.services.apiKeys.create(name: "runner", space: "root", role: .worker)
            let down = TokenService(signer: FailingSigner(publicKey: TestKeys.primary.publicKey), issuer: "coffer", audience: "coffer-api", lifetime: 60)
            do {
                _ = try await fixture.services.apiKeys.issueToken(id: created.record.id, secret: created.secret, tokens: down, requestID: "req-1")
                Issue.record("a token was issued without a signature")
            } catch let error as CofferError {
                #expect(error.code == .unavailable)  // 503: retry later
                // The signer's own words (a key ARN, IAM advice) go to the log, not the answer.
                #expect(!error.message.contains("did not answer"), "\(error.message)")
            }
            let events = try await fixture.services.audit.list(AuditFilter(action: "token.issue"), limit: 10, cursor: nil, by: DomainFixture.principal(.admin))
            // Newest first: the failure recorded after the statement's own row.
            #expect(events.items.map(\.outcome) == [.failure, .success])
            #expect(events.items.first?.detail == "signing failed")
            #expect(events.items.allSatisfy { $0.requestID == "req-1" && $0.actor == created.record.id })
        }
    }
}

extension APIKeyServiceTests {
    /// `worker` reads every decrypted value of its space, write-only ones included: a space
    /// admin must not be able to mint one and read what its writers hid.
    @Test func onlyTheCommandLineAndRootAdminsGrantTheWorkerRole() async throws {
        try await DomainFixture.with { fixture, _ in
            let admin = DomainFixture.principal(.admin)
            _ = try await fixture.services.spaces.create(SpaceInput(id: "team", name: "Team", parent: "root", description: ""), by: admin)
            let teamAdmin = DomainFixture.principal(.admin, space: "team")
            do {
                _ = try await fixture.services.apiKeys.create(name: "mine", space: "team", role: .worker, by: teamAdmin)
                Issue.record("a space admin minted a worker key")
            } catch let error as CofferError {
                #expect(error.code == .roleNotGrantable)
                #expect(error.kind == .forbidden)
            }
            let denied = try await fixture.services.audit.list(AuditFilter(action: "api_key.create"), limit: 10, cursor: nil, by: admin)
            #expect(denied.items.map(\.outcome) == [.denied])
            #expect(denied.items.first?.detail == "role=worker")
            // A space admin still grants the other roles; the root admin and the command line grant worker.
            _ = try await fixture.services.apiKeys.create(name: "reader", space: "team", role: .read, by: teamAdmin)
            _ = try await fixture.services.apiKeys.create(name: "runner", space: "team", role: .worker, by: admin)
            _ = try await fixture.services.apiKeys.create(name: "ci", space: "team", role: .worker)
        }
    }
}

/// Named KMS keys: a ciphertext opens under its key and context only, and a disabled key
/// refuses work.
@Suite struct KMSServiceTests {
    @Test func encryptDecryptsUnderItsContextAndADisabledKeyRefuses() async throws {
        try await DomainFixture.with { fixture, _ in
            let kms = fixture.services.kms
            let admin = DomainFixture.principal(.admin)
            let user = DomainFixture.principal(.write)
            _ = try await kms.create(KMSKeyInput(name: "payments"), by: admin)
            let plaintext = Data("card".utf8).base64EncodedString()
            let context = Data("order-1".utf8).base64EncodedString()
            let sealed = try await kms.perform(.encrypt, key: "payments", items: [KMSItem(plaintext: plaintext, context: context)], by: user)
            let ciphertext = try #require(sealed.first?.ciphertext)
            let opened = try await kms.perform(.decrypt, key: "payments", items: [
                KMSItem(ciphertext: ciphertext, context: context),
                KMSItem(ciphertext: ciphertext, context: Data("order-2".utf8).base64EncodedString()),
            ], by: user)
            #expect(opened[0].plaintext == Array("card".utf8))
            #expect(opened[1].error?.code == .decryptionFailed)
            _ = try await kms.update(name: "payments", KMSKeyPatch(enabled: false), by: admin)
            do {
                _ = try await kms.perform(.decrypt, key: "payments", items: [KMSItem(ciphertext: ciphertext, context: context)], by: user)
                Issue.record("a disabled key decrypted")
            } catch let error as CofferError {
                #expect(error.code == .kmsKeyDisabled)
            }
        }
    }
}

/// The key lifecycle: a rotation makes new active versions, the old ones keep opening.
@Suite struct KeyLifecycleTests {
    @Test func rotationKeepsOldValuesReadableAndOnlyARootAdminMayRotate() async throws {
        try await DomainFixture.with { fixture, _ in
            try await fixture.stack("app")
            try await fixture.set(.stack, "app", "A", "before")
            do {
                _ = try await fixture.services.keys.rotate(rewrap: false, by: DomainFixture.principal(.admin, space: "team"))
                Issue.record("an admin outside the root space rotated keys")
            } catch let error as CofferError {
                #expect(error.code == .forbidden)
            }
            let result = try await fixture.services.keys.rotate(rewrap: false)
            #expect(result.kekVersion == 2)
            let views = try await fixture.services.keys.list()
            #expect(views.first { $0.id == "kek-v1" }?.state == .retired)
            #expect(views.first { $0.id == "kek-v2" }?.state == .active)
            try await fixture.set(.stack, "app", "B", "after")
            let values = try await fixture.services.elements.listElements(.stack, ownerID: "app", by: DomainFixture.principal(.read)).items
            #expect(values.map(\.value) == ["before", "after"])
        }
    }
}

/// Revocation fails closed: a replica that has not refreshed its list of revoked keys for
/// longer than the bound refuses every token with 503, even a cached one.
@Suite struct RevocationListTests {
    @Test func tokensAreRefusedOnceTheListIsStaleAndAcceptedAgainAfterARefresh() async throws {
        try await DomainFixture.with { fixture, _ in
            // A clock moved by hand: the test holds behaviour, not timing (CI runs every suite at once).
            let now = Mutex(ContinuousClock.now)
            let revocations = RevocationList(staleAfter: .seconds(10), clock: { now.withLock { $0 } })
            let tokens = TokenService(signer: RSARootKey(privateKey: TestKeys.primary), issuer: "coffer", audience: "coffer-api", lifetime: 600, revocations: revocations)
            let key = try await fixture.services.apiKeys.create(name: "runner", space: "root", role: .worker)
            let issued = try await tokens.issue(for: key.record)
            do {
                _ = try tokens.verify(issued.token)
                Issue.record("a token was accepted on a list never refreshed")
            } catch let error as CofferError {
                #expect(error.code == .unavailable)
            }
            try await revocations.refresh(from: fixture.database, logger: DomainFixture.logger)
            let accepted = try tokens.verify(issued.token).apiKeyID  // now cached, too
            #expect(accepted == key.record.id)
            now.withLock { $0 += .seconds(11) }
            do {
                _ = try tokens.verify(issued.token)
                Issue.record("a cached token was accepted on a stale list")
            } catch let error as CofferError {
                #expect(error.code == .unavailable)
            }
            try await revocations.refresh(from: fixture.database, logger: DomainFixture.logger)
            let acceptedAgain = try tokens.verify(issued.token).apiKeyID
            #expect(acceptedAgain == key.record.id)
        }
    }
}

extension KeyLifecycleTests {
    /// A key-encryption key erased by `rotate --rewrap` leaves this replica's memory too
    /// (issue 19, point 7): the unwrapped-key cache keeps only what the keyring needs.
    @Test func anErasedKeyEncryptionKeyIsForgotten() async throws {
        try await DomainFixture.with { fixture, _ in
            #expect(fixture.services.keys.hierarchy.unwrapped.versions == [1])
            let result = try await fixture.services.keys.rotate(rewrap: true)
            #expect(result.erasedKEKs == [1])
            #expect(fixture.services.keys.hierarchy.unwrapped.versions == [2])
        }
    }
}

/// Races and moves (issue 19, point 8).
@Suite struct SpaceRaceTests {
    /// A space deletion in progress (it holds the tree lock) makes a concurrent key
    /// creation wait, then fail: the key can never be bound to a space that is gone.
    @Test func anAPIKeyCannotBeCreatedIntoASpaceBeingDeleted() async throws {
        try await DomainFixture.with { fixture, testDatabase in
            let admin = DomainFixture.principal(.admin)
            _ = try await fixture.services.spaces.create(SpaceInput(id: "doomed", name: "Doomed", parent: "root", description: ""), by: admin)
            let created = try await testDatabase.withConnection { connection -> Result<String, any Error> in
                let logger = DomainFixture.logger
                try await connection.query("BEGIN", logger: logger)
                try await connection.query("SELECT pg_advisory_xact_lock(\(SpaceRepository.treeLockKey))", logger: logger)
                let creation = Task { () -> Result<String, any Error> in
                    do {
                        return .success(try await fixture.services.apiKeys.create(name: "late", space: "doomed", role: .read).record.id)
                    } catch {
                        return .failure(error)
                    }
                }
                try await Task.sleep(for: .milliseconds(300))
                try await connection.query("DELETE FROM spaces WHERE id = 'doomed'", logger: logger)
                try await connection.query("COMMIT", logger: logger)
                return await creation.value
            }
            switch created {
            case .success: Issue.record("a key was created into a space deleted meanwhile")
            case .failure(let error as CofferError): #expect(error.code == .unknownSpace)
            case .failure(let error): Issue.record("unexpected \(type(of: error))")
            }
            let orphans = try await testDatabase.withConnection { connection in
                try await connection.query("SELECT count(*) FROM api_keys k WHERE NOT EXISTS (SELECT 1 FROM spaces s WHERE s.id = k.space)",
                                           logger: DomainFixture.logger).collect().first!.decode(Int.self)
            }
            #expect(orphans == 0)
        }
    }

    /// The command line lists and revokes every key, one bound to a space that is gone too.
    @Test func theCommandLineListsAndRevokesAKeyWhoseSpaceIsGone() async throws {
        try await DomainFixture.with { fixture, testDatabase in
            let admin = DomainFixture.principal(.admin)
            _ = try await fixture.services.spaces.create(SpaceInput(id: "old", name: "Old", parent: "root", description: ""), by: admin)
            let key = try await fixture.services.apiKeys.create(name: "stray", space: "old", role: .read)
            try await testDatabase.withConnection { connection in
                try await connection.query("DELETE FROM spaces WHERE id = 'old'", logger: DomainFixture.logger)
            }
            #expect(try await fixture.services.apiKeys.list().items.contains { $0.id == key.record.id })
            try await fixture.services.apiKeys.revoke(id: key.record.id)
            #expect(try await fixture.services.apiKeys.list().items.first { $0.id == key.record.id }?.revokedAt != nil)
            // An admin token of the root space still sees only keys of spaces in its tree.
            #expect(try await !fixture.services.apiKeys.list(by: admin).items.contains { $0.id == key.record.id })
        }
    }
}
