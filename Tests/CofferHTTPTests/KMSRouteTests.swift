@_spi(Testing) import CofferStore
import CofferCore
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Testing

/// Coffer as a KMS for applications: named keys, their operations, access and audit.
@Suite struct KMSRouteTests {
    static func b64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func createKey(_ fixture: HTTPFixture, _ name: String, token: String, space: String? = nil, algorithm: String? = nil) async throws {
        var body: [String: Any] = ["name": name, "description": "for tests"]
        if let space { body["space"] = space }
        if let algorithm { body["algorithm"] = algorithm }
        let reply = try await fixture.request(.post, "/api/v1/kms/keys", token: token, json: body)
        #expect(reply.status == .created, "\(reply.text)")
    }

    static func encrypt(_ fixture: HTTPFixture, _ key: String, _ plaintext: String, context: String? = nil, token: String) async throws -> String {
        var body = ["plaintext": b64(plaintext)]
        if let context { body["context"] = b64(context) }
        let reply = try await fixture.request(.post, "/api/v1/kms/keys/\(key)/encrypt", token: token, json: body)
        guard reply.status == .ok, let ciphertext = reply.json["ciphertext"] as? String else {
            throw TestFailure("encrypt answered \(reply.status): \(reply.text)")
        }
        return ciphertext
    }

    static func decrypt(_ fixture: HTTPFixture, _ key: String, _ ciphertext: String, context: String? = nil, token: String) async throws -> HTTPFixture.Reply {
        var body = ["ciphertext": ciphertext]
        if let context { body["context"] = b64(context) }
        return try await fixture.request(.post, "/api/v1/kms/keys/\(key)/decrypt", token: token, json: body)
    }

    static func plaintext(_ reply: HTTPFixture.Reply) -> String? {
        (reply.json["plaintext"] as? String).flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) }
    }

    @Test func versionOneDecryptsAfterTwoRotationsUntilTheMinimumPassesItAndRewrapBringsItForward() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let writer = try await fixture.token(.write)
            try await Self.createKey(fixture, "orders", token: admin)
            let v1 = try await Self.encrypt(fixture, "orders", "card 4111", context: "order-17", token: writer)
            #expect(v1.hasPrefix("coffer:v1:"))
            for expected in [2, 3] {
                let rotated = try await fixture.request(.post, "/api/v1/kms/keys/orders/rotate", token: admin)
                #expect(rotated.status == .ok && rotated.json["latest_version"] as? Int == expected, "\(rotated.text)")
            }
            #expect(try await Self.encrypt(fixture, "orders", "new", token: writer).hasPrefix("coffer:v3:"))
            // Two rotations later, version 1 still decrypts.
            let old = try await Self.decrypt(fixture, "orders", v1, context: "order-17", token: writer)
            #expect(old.status == .ok && Self.plaintext(old) == "card 4111" && old.json["key_version"] as? Int == 1, "\(old.text)")
            // Rewrap brings it to the latest version without returning plaintext.
            let rewrap = try await fixture.request(.post, "/api/v1/kms/keys/orders/rewrap", token: writer,
                                                   json: ["ciphertext": v1, "context": Self.b64("order-17")])
            #expect(rewrap.status == .ok && rewrap.json["plaintext"] == nil, "\(rewrap.text)")
            let v3 = try #require(rewrap.json["ciphertext"] as? String)
            #expect(v3.hasPrefix("coffer:v3:") && rewrap.json["key_version"] as? Int == 3)
            // Raising the minimum past version 1 refuses it with a clear 4xx; the rewrapped one opens.
            let writerPatch = try await fixture.request(.patch, "/api/v1/kms/keys/orders", token: writer, json: ["min_decryption_version": 2])
            #expect(writerPatch.status == .forbidden)
            let raised = try await fixture.request(.patch, "/api/v1/kms/keys/orders", token: admin, json: ["min_decryption_version": 2])
            #expect(raised.status == .ok && raised.json["min_decryption_version"] as? Int == 2, "\(raised.text)")
            let refused = try await Self.decrypt(fixture, "orders", v1, context: "order-17", token: writer)
            #expect(refused.status == .unprocessableContent && refused.errorCode == "key_version_below_minimum", "\(refused.text)")
            #expect((refused.json["error"] as? [String: Any])?["message"] as? String ?? "" != "")
            let rewrapOld = try await fixture.request(.post, "/api/v1/kms/keys/orders/rewrap", token: writer,
                                                      json: ["ciphertext": v1, "context": Self.b64("order-17")])
            #expect(rewrapOld.errorCode == "key_version_below_minimum")
            let forward = try await Self.decrypt(fixture, "orders", v3, context: "order-17", token: writer)
            #expect(forward.status == .ok && Self.plaintext(forward) == "card 4111")
            // The minimum stays within the versions; lowering it opens version 1 again.
            let tooHigh = try await fixture.request(.patch, "/api/v1/kms/keys/orders", token: admin, json: ["min_decryption_version": 4])
            #expect(tooHigh.status == .unprocessableContent && tooHigh.errorCode == "invalid_min_decryption_version")
            _ = try await fixture.request(.patch, "/api/v1/kms/keys/orders", token: admin, json: ["min_decryption_version": 1])
            #expect(try await Self.decrypt(fixture, "orders", v1, context: "order-17", token: writer).status == .ok)
            // A version the key does not have.
            let future = v3.replacingOccurrences(of: "coffer:v3:", with: "coffer:v9:")
            #expect(try await Self.decrypt(fixture, "orders", future, context: "order-17", token: writer).errorCode == "unknown_key_version")
        }
    }

    @Test func aCiphertextMovedToAnotherKeyOrContextOrEditedByOneBitIsRefused() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let worker = try await fixture.token(.worker)
            try await Self.createKey(fixture, "alpha", token: admin)
            try await Self.createKey(fixture, "beta", token: admin, algorithm: "aes-128-gcm")
            let ciphertext = try await Self.encrypt(fixture, "alpha", "the payload", context: "tenant=1", token: worker)
            #expect(try await Self.decrypt(fixture, "alpha", ciphertext, context: "tenant=1", token: worker).status == .ok)
            // Another key (same version number), another context, no context.
            for (key, context) in [("beta", "tenant=1"), ("alpha", "tenant=2"), ("alpha", nil), ("alpha", "tenant=1 ")] as [(String, String?)] {
                let reply = try await Self.decrypt(fixture, key, ciphertext, context: context, token: worker)
                #expect(reply.status == .unprocessableContent && reply.errorCode == "decryption_failed", "\(key) \(context ?? "-"): \(reply.text)")
                #expect(!reply.text.contains("the payload"))
            }
            // Every single-bit edit of the bytes: nonce, ciphertext and tag.
            let parts = ciphertext.split(separator: ":", maxSplits: 2)
            let bytes = try #require(Data(base64Encoded: String(parts[2])))
            var refused = 0
            for bit in 0..<(bytes.count * 8) {
                var edited = [UInt8](bytes)
                edited[bit / 8] ^= UInt8(1 << (bit % 8))
                let text = "coffer:v1:" + Data(edited).base64EncodedString()
                let reply = try await Self.decrypt(fixture, "alpha", text, context: "tenant=1", token: worker)
                if reply.status == .unprocessableContent && reply.errorCode == "decryption_failed" { refused += 1 }
            }
            #expect(refused == bytes.count * 8)
            // Edits of the text: the version, a non-canonical base64, a truncation, junk.
            let body = String(parts[2])
            let nonCanonical = body.hasSuffix("=") ? String(body.dropLast()) : body + "="
            for text in ["coffer:v2:" + body, "coffer:v01:" + body, "coffer:v1:" + nonCanonical, "coffer:v1:" + String(body.prefix(20)),
                         "coffer:v0:" + body, "COFFER:v1:" + body, "coffer:v1:" + body + "AAAA", "coffer:v99999999999:" + body, "coffer:v1:" + body + "\n"] {
                let reply = try await Self.decrypt(fixture, "alpha", text, context: "tenant=1", token: worker)
                #expect((400..<500).contains(reply.status.code) && reply.errorCode != nil, "\(text.prefix(24)): \(reply.text)")
            }
        }
    }

    @Test func aBatchOfAThousandItemsSucceedsOrFailsItemByItem() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let writer = try await fixture.token(.write)
            try await Self.createKey(fixture, "bulk", token: admin)
            let plaintexts = (0..<1000).map { index in (0..<64).map { UInt8(truncatingIfNeeded: index &* 31 &+ $0) } }
            let encrypted = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer, json: [
                "batch": plaintexts.enumerated().map { ["plaintext": Data($0.element).base64EncodedString(), "context": Self.b64("row-\($0.offset)")] },
            ])
            #expect(encrypted.status == .ok)
            let results = try #require(encrypted.json["batch"] as? [[String: Any]])
            #expect(results.count == 1000)
            let ciphertexts = results.compactMap { $0["ciphertext"] as? String }
            #expect(ciphertexts.count == 1000 && Set(ciphertexts).count == 1000)
            // Decrypt them back, with three items broken in three ways: each fails alone.
            var items: [[String: String]] = ciphertexts.enumerated().map { ["ciphertext": $0.element, "context": Self.b64("row-\($0.offset)")] }
            items[10]["context"] = Self.b64("row-11")
            items[500]["ciphertext"] = "not a ciphertext"
            items[999]["context"] = "%%%"
            let decrypted = try await fixture.request(.post, "/api/v1/kms/keys/bulk/decrypt", token: writer, json: ["batch": items])
            #expect(decrypted.status == .ok)
            let opened = try #require(decrypted.json["batch"] as? [[String: Any]])
            #expect(opened.count == 1000)
            for (index, item) in opened.enumerated() {
                let code = (item["error"] as? [String: Any])?["code"] as? String
                switch index {
                case 10: #expect(code == "decryption_failed")
                case 500: #expect(code == "invalid_ciphertext")
                case 999: #expect(code == "invalid_context")
                default:
                    #expect(code == nil && (item["plaintext"] as? String).flatMap { Data(base64Encoded: $0) }.map { [UInt8]($0) } == plaintexts[index])
                }
            }
            let metrics = try await fixture.request(.get, "/metrics")
            #expect(metrics.text.contains(#"coffer_kms_items_total{operation="decrypt",outcome="ok"} 997"#))
            #expect(metrics.text.contains(#"coffer_kms_items_total{operation="decrypt",outcome="decryption_failed"} 1"#))
            #expect(metrics.text.contains(#"coffer_kms_items_total{operation="encrypt",outcome="ok"} 1000"#))
            // Limits of the batch form.
            let tooMany = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer,
                                                    json: ["batch": Array(repeating: ["plaintext": "AA=="], count: 1001)])
            #expect(tooMany.status == .contentTooLarge)
            let empty = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer, json: ["batch": [] as [Any]])
            #expect(empty.status == .badRequest)
            let both = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer,
                                                 json: ["plaintext": "AA==", "batch": [["plaintext": "AA=="]]])
            #expect(both.status == .badRequest && both.errorCode == "invalid_batch")
            let unknownField = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer,
                                                         json: ["batch": [["plaintext": "AA==", "key": "x"]]])
            #expect(unknownField.status == .badRequest)
            for body in [["batch": ["AA=="]], ["batch": [["plaintext": 12]]], ["batch": "AA=="], ["plaintext": NSNull()]] as [[String: Any]] {
                let reply = try await fixture.request(.post, "/api/v1/kms/keys/bulk/encrypt", token: writer, json: body)
                #expect(reply.status == .badRequest && reply.errorCode == "invalid_field", "\(reply.text)")
            }
            let numberFlag = try await fixture.request(.post, "/api/v1/kms/keys/bulk/datakey", token: writer, json: ["include_plaintext": 1])
            #expect(numberFlag.status == .badRequest && numberFlag.errorCode == "invalid_field")
            // One audit event per request, naming versions and counts, never data.
            let audit = try await fixture.request(.get, "/api/v1/audit-events?action=kms.decrypt", token: admin)
            let event = try #require(audit.items.first)
            #expect(event["resource"] as? String == "kms_key:bulk" && event["outcome"] as? String == "failure", "\(audit.text)")
            #expect(event["detail"] as? String == "items=1000 failed=3 versions=1 error=decryption_failed", "\(audit.text)")
        }
    }

    @Test func dataKeysComeWrappedAndOptionallyInPlaintext() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let worker = try await fixture.token(.worker)
            try await Self.createKey(fixture, "envelope", token: admin)
            let both = try await fixture.request(.post, "/api/v1/kms/keys/envelope/datakey", token: worker, json: ["context": Self.b64("bucket-a")])
            #expect(both.status == .ok, "\(both.text)")
            let key = try #require((both.json["plaintext"] as? String).flatMap { Data(base64Encoded: $0) })
            #expect(key.count == 32 && both.json["key_version"] as? Int == 1)
            let wrapped = try #require(both.json["ciphertext"] as? String)
            let unwrapped = try await Self.decrypt(fixture, "envelope", wrapped, context: "bucket-a", token: worker)
            #expect((unwrapped.json["plaintext"] as? String).flatMap { Data(base64Encoded: $0) } == key)
            let wrappedOnly = try await fixture.request(.post, "/api/v1/kms/keys/envelope/datakey", token: worker, json: ["include_plaintext": false])
            #expect(wrappedOnly.status == .ok && wrappedOnly.json["plaintext"] is NSNull && wrappedOnly.json["ciphertext"] is String, "\(wrappedOnly.text)")
            let batch = try await fixture.request(.post, "/api/v1/kms/keys/envelope/datakey", token: worker,
                                                  json: ["batch": [["context": Self.b64("a")], [:]], "include_plaintext": false])
            let items = try #require(batch.json["batch"] as? [[String: Any]])
            #expect(items.count == 2 && items.allSatisfy { $0["ciphertext"] is String && $0["plaintext"] is NSNull })
        }
    }

    @Test func rolesSpacesDisablingAndDeletionGuardTheKeys() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            for space in ["team-a", "team-b"] {
                #expect(try await fixture.request(.post, "/api/v1/spaces", token: admin, json: ["id": space, "name": space, "parent": "root"]).status == .created)
            }
            let adminA = try await fixture.token(.admin, space: "team-a")
            let (writerA, writerAKeyID) = try await fixture.tokenAndKey(.write, space: "team-a")
            let readerA = try await fixture.token(.read, space: "team-a")
            let writerB = try await fixture.token(.write, space: "team-b")
            // Only an admin creates keys; by default in its own space.
            #expect(try await fixture.request(.post, "/api/v1/kms/keys", token: writerA, json: ["name": "pay"]).status == .forbidden)
            // A refusal is audited under the caller's own space, never one it named; a name
            // that is not a slug is refused before that, so no event carries it.
            #expect(try await fixture.request(.post, "/api/v1/kms/keys", token: writerA, json: ["name": "elsewhere", "space": "team-b"]).status == .forbidden)
            let badName = try await fixture.request(.post, "/api/v1/kms/keys", token: writerA, json: ["name": "Bad Name!"])
            #expect(badName.status == .badRequest && badName.errorCode == "invalid_id", "\(badName.text)")
            let created = try await fixture.request(.post, "/api/v1/kms/keys", token: adminA, json: ["name": "pay"])
            #expect(created.status == .created && created.json["space"] as? String == "team-a" && created.json["algorithm"] as? String == "aes-256-gcm")
            #expect(Set(created.json.keys) == ["name", "space", "algorithm", "description", "latest_version", "min_decryption_version", "enabled",
                                               "created_by", "created_at", "updated_at"])
            #expect(try await fixture.request(.post, "/api/v1/kms/keys", token: adminA, json: ["name": "pay"]).status == .conflict)
            #expect(try await fixture.request(.post, "/api/v1/kms/keys", token: adminA, json: ["name": "x", "space": "team-b"]).status == .unprocessableContent)
            #expect(try await fixture.request(.post, "/api/v1/kms/keys", token: adminA, json: ["name": "x", "algorithm": "des"]).status == .badRequest)
            // read sees metadata but may not use it; write uses it; another space sees nothing.
            #expect(try await fixture.request(.get, "/api/v1/kms/keys/pay", token: readerA).status == .ok)
            #expect(try await fixture.request(.post, "/api/v1/kms/keys/pay/encrypt", token: readerA, json: ["plaintext": "AA=="]).status == .forbidden)
            let ciphertext = try await Self.encrypt(fixture, "pay", "salary", token: writerA)
            #expect(try await fixture.request(.get, "/api/v1/kms/keys/pay", token: writerB).status == .notFound)
            #expect(try await fixture.request(.post, "/api/v1/kms/keys/pay/encrypt", token: writerB, json: ["plaintext": "AA=="]).status == .notFound)
            #expect(try await Self.decrypt(fixture, "pay", ciphertext, token: writerB).status == .notFound)
            #expect(try await fixture.request(.get, "/api/v1/kms/keys", token: writerB).items.isEmpty)
            #expect(try await fixture.request(.get, "/api/v1/kms/keys", token: admin).items.map { $0["name"] as? String } == ["pay"])
            // A space holding a key is not deleted.
            #expect(try await fixture.request(.delete, "/api/v1/spaces/team-a", token: admin).status == .conflict)
            // Disabled: every operation refused, management still allowed.
            let disabled = try await fixture.request(.patch, "/api/v1/kms/keys/pay", token: adminA, json: ["enabled": false])
            #expect(disabled.json["enabled"] as? Bool == false)
            let refused = try await Self.decrypt(fixture, "pay", ciphertext, token: writerA)
            #expect(refused.status == .conflict && refused.errorCode == "kms_key_disabled")
            _ = try await fixture.request(.patch, "/api/v1/kms/keys/pay", token: adminA, json: ["enabled": true])
            #expect(try await Self.decrypt(fixture, "pay", ciphertext, token: writerA).status == .ok)
            // Deleting needs the name repeated; afterwards the key and its material are gone.
            let unconfirmed = try await fixture.request(.delete, "/api/v1/kms/keys/pay", token: adminA, json: ["confirm": "pa"])
            #expect(unconfirmed.status == .badRequest && unconfirmed.errorCode == "confirmation_required")
            #expect(try await fixture.request(.delete, "/api/v1/kms/keys/pay", token: adminA, json: ["confirm": "pay"]).status == .noContent)
            #expect(try await Self.decrypt(fixture, "pay", ciphertext, token: writerA).status == .notFound)
            let material = try await fixture.database.withConnection { connection in
                try await connection.query("SELECT count(*) FROM kms_key_versions", logger: Logger(label: "t")).collect().first!.decode(Int.self)
            }
            #expect(material == 0)
            // A new key under the old name does not open what the old one sealed.
            try await Self.createKey(fixture, "pay", token: adminA)
            #expect(try await Self.decrypt(fixture, "pay", ciphertext, token: writerA).errorCode == "decryption_failed")
            // The trail: who did what to which key, no data.
            let audit = try await fixture.request(.get, "/api/v1/audit-events?resource=kms_key:pay&limit=100", token: admin)
            let actions = audit.items.compactMap { $0["action"] as? String }
            for action in ["kms_key.create", "kms.encrypt", "kms.decrypt", "kms_key.update", "kms_key.delete"] {
                #expect(actions.contains(action), "\(action) missing: \(actions)")
            }
            #expect(!audit.text.contains(Self.b64("salary")) && !audit.text.contains(ciphertext))
            let refusedCreate = try #require(audit.items.first { $0["action"] as? String == "kms_key.create" && $0["outcome"] as? String == "denied" })
            #expect(refusedCreate["space"] as? String == "team-a" && refusedCreate["actor"] as? String == writerAKeyID, "\(refusedCreate)")
            let elsewhere = try await fixture.request(.get, "/api/v1/audit-events?resource=kms_key:elsewhere&limit=10", token: admin)
            #expect(elsewhere.items.count == 1 && elsewhere.items.first?["outcome"] as? String == "denied", "\(elsewhere.text)")
            #expect(elsewhere.items.first?["space"] as? String == "team-a", "\(elsewhere.text)")
            let everything = try await fixture.request(.get, "/api/v1/audit-events?limit=500", token: admin)
            #expect(everything.status == .ok && !everything.items.isEmpty)
            #expect(!everything.text.contains("Bad Name"))
        }
    }

    @Test func rotatingTheKeyEncryptionKeyWithRewrapCarriesKMSKeysAlong() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            try await Self.createKey(fixture, "carried", token: admin)
            let before = try await Self.encrypt(fixture, "carried", "kept", token: admin)
            let result = try await fixture.keys.rotate(rewrap: true)
            #expect(result.erasedKEKs == [1])
            let kekVersions = try await fixture.database.withConnection { connection in
                var versions: [Int32] = []
                for try await version in try await connection.query("SELECT kek_version FROM kms_key_versions", logger: Logger(label: "t")).decode(Int32.self) {
                    versions.append(version)
                }
                return versions
            }
            #expect(kekVersions == [Int32(result.kekVersion)])
            #expect(Self.plaintext(try await Self.decrypt(fixture, "carried", before, token: admin)) == "kept")
            // A key version sealed under a retired key-encryption key blocks destroying it.
            _ = try await fixture.request(.post, "/api/v1/kms/keys/carried/rotate", token: admin)
            _ = try await fixture.keys.rotate(rewrap: false)
            let destroy = try await fixture.request(.delete, "/api/v1/keys/versions/kek-v\(result.kekVersion)", token: admin)
            #expect(destroy.status == .conflict, "\(destroy.text)")
            #expect(Self.plaintext(try await Self.decrypt(fixture, "carried", before, token: admin)) == "kept")
        }
    }
}
