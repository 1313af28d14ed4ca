import CofferCore
import Foundation
import Hummingbird
import Testing

/// Spaces and roles, history, auto-attachment and the audit trail, through HTTP.
@Suite struct DomainRouteTests {
    nonisolated(unsafe) static let variable: [String: Any] = ["type": "ENVIRONMENT_VARIABLE", "value": "v"]

    /// root ─┬─ team-a ── team-a-dev
    ///       └─ team-b
    func makeSpaces(_ fixture: HTTPFixture, admin: String) async throws {
        for (id, parent) in [("team-a", "root"), ("team-b", "root"), ("team-a-dev", "team-a")] {
            let reply = try await fixture.request(.post, "/api/v1/spaces", token: admin, json: ["id": id, "name": id, "parent": parent])
            #expect(reply.status == .created, "\(id): \(reply.text)")
        }
    }

    @Test func aReadKeyChangesNothingAWorkerSeesNoKeysAndSiblingSpacesAreInvisible() async throws {
        try await HTTPFixture.with { fixture in
            let root = try await fixture.token(.admin)
            try await makeSpaces(fixture, admin: root)
            let aWriter = try await fixture.token(.write, space: "team-a")
            let bWriter = try await fixture.token(.write, space: "team-b")
            // Fixtures in both spaces, made by their own writers.
            for (writer, space) in [(aWriter, "team-a"), (bWriter, "team-b")] {
                #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "\(space)-app", "name": "App", "space": space]).status == .created)
                #expect(try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": "\(space)-ctx", "name": "Ctx", "space": space]).status == .created)
                #expect(try await fixture.request(.put, "/api/v1/stacks/\(space)-app/config/KEY", token: writer, json: Self.variable).status == .created)
                #expect(try await fixture.request(.put, "/api/v1/stacks/\(space)-app/contexts/\(space)-ctx", token: writer, json: ["priority": 0]).status == .ok)
            }
            // A key may not create in a space outside its reach.
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: aWriter, json: ["id": "x", "name": "x", "space": "team-b"]).status == .unprocessableContent)

            // read on team-a: every change is refused with 403.
            let reader = try await fixture.token(.read, space: "team-a")
            let changes: [(HTTPRequest.Method, String, Any?)] = [
                (.post, "/api/v1/stacks", ["id": "new", "name": "n", "space": "team-a"]),
                (.patch, "/api/v1/stacks/team-a-app", ["name": "renamed"]),
                (.delete, "/api/v1/stacks/team-a-app", nil),
                (.post, "/api/v1/contexts", ["id": "new", "name": "n", "space": "team-a"]),
                (.patch, "/api/v1/contexts/team-a-ctx", ["labels": ["x"]]),
                (.delete, "/api/v1/contexts/team-a-ctx", nil),
                (.put, "/api/v1/stacks/team-a-app/config/KEY", Self.variable),
                (.delete, "/api/v1/stacks/team-a-app/config/KEY", nil),
                (.post, "/api/v1/stacks/team-a-app/config/KEY/versions/1/restore", nil),
                (.put, "/api/v1/stacks/team-a-app/contexts/team-a-ctx", ["priority": 3]),
                (.delete, "/api/v1/stacks/team-a-app/contexts/team-a-ctx", nil),
                (.post, "/api/v1/spaces", ["id": "s", "name": "s", "parent": "team-a"]),
                (.post, "/api/v1/api-keys", ["name": "k", "space": "team-a", "role": "admin"]),
                (.get, "/api/v1/stacks/team-a-app/runtime-config", nil),
            ]
            for (method, path, body) in changes {
                let reply = try await fixture.request(method, path, token: reader, json: body)
                #expect(reply.status == .forbidden, "read key: \(method) \(path) answered \(reply.status)")
            }
            #expect(try await fixture.request(.get, "/api/v1/stacks/team-a-app/config", token: reader).items.count == 1)
            #expect(try await fixture.request(.get, "/api/v1/stacks/team-a-app/config/KEY", token: reader).json["value"] as? String == "v")
            #expect(try await fixture.request(.get, "/api/v1/stacks/team-a-app/config/KEY/versions", token: reader).items.count == 1)

            // worker: runtime config yes, API keys, spaces, audit and config lists no.
            let worker = try await fixture.token(.worker, space: "team-a")
            #expect(try await fixture.request(.get, "/api/v1/stacks/team-a-app/runtime-config", token: worker).status == .ok)
            for path in ["/api/v1/api-keys", "/api/v1/spaces", "/api/v1/audit-events", "/api/v1/stacks/team-a-app/config"] {
                #expect(try await fixture.request(.get, path, token: worker).status == .forbidden, "worker: \(path)")
            }

            // Everything of sibling space team-b is 404 for team-a's keys, whatever the role.
            let aAdmin = try await fixture.token(.admin, space: "team-a")
            let aWorker = worker
            let probes: [(String, HTTPRequest.Method, String, Any?)] = [
                (aWriter, .get, "/api/v1/stacks/team-b-app", nil),
                (aWriter, .patch, "/api/v1/stacks/team-b-app", ["name": "mine"]),
                (aWriter, .delete, "/api/v1/stacks/team-b-app", nil),
                (aWriter, .get, "/api/v1/contexts/team-b-ctx", nil),
                (aWriter, .get, "/api/v1/stacks/team-b-app/config", nil),
                (aWriter, .get, "/api/v1/stacks/team-b-app/config/KEY", nil),
                (aWriter, .put, "/api/v1/stacks/team-b-app/config/KEY", Self.variable),
                (aWriter, .delete, "/api/v1/stacks/team-b-app/config/KEY", nil),
                (aWriter, .get, "/api/v1/stacks/team-b-app/config/KEY/versions", nil),
                (aWriter, .post, "/api/v1/stacks/team-b-app/config/KEY/versions/1/restore", nil),
                (aWriter, .put, "/api/v1/stacks/team-b-app/contexts/team-b-ctx", ["priority": 1]),
                (aWriter, .put, "/api/v1/stacks/team-a-app/contexts/team-b-ctx", ["priority": 1]),
                (aWorker, .get, "/api/v1/stacks/team-b-app/runtime-config", nil),
                (aAdmin, .get, "/api/v1/spaces/team-b", nil),
                (aAdmin, .patch, "/api/v1/spaces/team-b", ["name": "mine"]),
                (aAdmin, .delete, "/api/v1/spaces/team-b", nil),
            ]
            for (token, method, path, body) in probes {
                let reply = try await fixture.request(method, path, token: token, json: body)
                #expect(reply.status == .notFound, "\(method) \(path) answered \(reply.status)")
                // The same answer as for something that does not exist: no hint that it is forbidden.
                #expect(!reply.text.contains("forbidden") && !reply.text.contains("role") && reply.errorCode == "not_found")
            }
            // Lists show only what is in reach.
            #expect(try await fixture.request(.get, "/api/v1/stacks", token: aWriter).items.map { $0["id"] as? String } == ["team-a-app"])
            #expect(try await fixture.request(.get, "/api/v1/contexts", token: aWriter).items.map { $0["id"] as? String } == ["team-a-ctx"])
            let spaces = try await fixture.request(.get, "/api/v1/spaces", token: aAdmin).items.compactMap { $0["id"] as? String }
            #expect(spaces == ["team-a", "team-a-dev"])
            let keys = try await fixture.request(.get, "/api/v1/api-keys", token: aAdmin).items
            #expect(!keys.isEmpty && keys.allSatisfy { ["team-a", "team-a-dev"].contains($0["space"] as? String ?? "") })
            #expect(keys.allSatisfy { $0["secret"] == nil })
            // The root admin sees both.
            #expect(try await fixture.request(.get, "/api/v1/stacks", token: root).items.count == 2)
        }
    }

    @Test func adminsManageSpacesAndKeysOfTheirSubtreeAndRevocationIsImmediate() async throws {
        try await HTTPFixture.with { fixture in
            let root = try await fixture.token(.admin)
            try await makeSpaces(fixture, admin: root)
            let aAdmin = try await fixture.token(.admin, space: "team-a")
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: aAdmin, json: ["id": "team-a-qa", "name": "QA", "parent": "team-a"]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: aAdmin, json: ["id": "x", "name": "x", "parent": "team-b"]).status == .unprocessableContent)
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: aAdmin, json: ["id": "team-a-qa", "name": "QA", "parent": "team-a"]).status == .conflict)
            // Own space: rename yes, move or delete no; no cycles.
            #expect(try await fixture.request(.patch, "/api/v1/spaces/team-a", token: aAdmin, json: ["name": "Team A"]).json["name"] as? String == "Team A")
            #expect(try await fixture.request(.patch, "/api/v1/spaces/team-a", token: aAdmin, json: ["parent": "team-a-dev"]).status == .unprocessableContent)
            #expect(try await fixture.request(.delete, "/api/v1/spaces/team-a", token: aAdmin).status == .unprocessableContent)
            #expect(try await fixture.request(.patch, "/api/v1/spaces/team-a", token: root, json: ["parent": "team-a-dev"]).errorCode == "space_cycle")
            #expect(try await fixture.request(.patch, "/api/v1/spaces/team-a-qa", token: aAdmin, json: ["parent": "team-a-dev"]).json["parent"] as? String == "team-a-dev")
            // A space with content cannot be deleted; an empty one can.
            #expect(try await fixture.request(.delete, "/api/v1/spaces/team-a-dev", token: aAdmin).status == .conflict)
            #expect(try await fixture.request(.delete, "/api/v1/spaces/team-a-qa", token: aAdmin).status == .noContent)
            #expect(try await fixture.request(.delete, "/api/v1/spaces/root", token: root).status == .unprocessableContent)

            // API keys: created in reach, secret shown once, revocation refuses the key's tokens at once.
            // (A space admin grants read, write and admin; worker only the root's admins do: SecurityRouteTests.)
            let created = try await fixture.request(.post, "/api/v1/api-keys", token: aAdmin, json: ["name": "ci", "space": "team-a-dev", "role": "read"])
            #expect(created.status == .created)
            let keyID = try #require(created.json["id"] as? String)
            let secret = try #require(created.json["secret"] as? String)
            #expect(try await fixture.request(.post, "/api/v1/api-keys", token: aAdmin, json: ["name": "x", "space": "team-b", "role": "read"]).status == .unprocessableContent)
            #expect(try await fixture.request(.post, "/api/v1/api-keys", token: aAdmin, json: ["name": "x", "space": "team-a", "role": "owner"]).status == .badRequest)
            let issued = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": keyID, "api_key_secret": secret])
            let token = try #require(issued.json["token"] as? String)
            #expect(try await fixture.request(.get, "/api/v1/stacks", token: token).status == .ok)
            let bKey = try await fixture.tokenAndKey(.read, space: "team-b")
            #expect(try await fixture.request(.delete, "/api/v1/api-keys/\(bKey.keyID)", token: aAdmin).status == .notFound)
            #expect(try await fixture.request(.delete, "/api/v1/api-keys/\(keyID)", token: aAdmin).status == .noContent)
            let refused = try await fixture.request(.get, "/api/v1/stacks", token: token)
            #expect(refused.status == .unauthorized)
            #expect(refused.errorCode == "token_revoked")
            #expect(try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": keyID, "api_key_secret": secret]).status == .unauthorized)
            // A space holding a live key cannot be deleted.
            _ = try await fixture.token(.read, space: "team-b")
            #expect(try await fixture.request(.delete, "/api/v1/spaces/team-b", token: root).status == .conflict)
        }
    }

    @Test func runtimeConfigResolvesOwnThenExplicitByPriorityThenAutoAttached() async throws {
        try await HTTPFixture.with { fixture in
            let root = try await fixture.token(.admin)
            try await makeSpaces(fixture, admin: root)
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker, space: "team-a")
            func post(_ kind: String, _ id: String, space: String, labels: [String] = []) async throws {
                let reply = try await fixture.request(.post, "/api/v1/\(kind)", token: writer, json: ["id": id, "name": id, "space": space, "labels": labels])
                #expect(reply.status == .created, "\(id): \(reply.text)")
            }
            func put(_ path: String, _ name: String, _ value: String) async throws {
                let reply = try await fixture.request(.put, "/api/v1/\(path)/config/\(name)", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": value])
                #expect(reply.status == .created || reply.status == .ok, "\(path) \(name): \(reply.text)")
            }
            try await post("stacks", "api", space: "team-a", labels: ["prod", "eu"])
            try await post("contexts", "first", space: "team-a")
            try await post("contexts", "b-tie", space: "root")
            try await post("contexts", "a-tie", space: "team-a")
            try await post("contexts", "auto-prod", space: "root", labels: ["autoattach:prod"])
            try await post("contexts", "auto-all", space: "team-a", labels: ["autoattach:*"])
            try await post("contexts", "auto-other", space: "root", labels: ["autoattach:staging"])
            try await post("contexts", "auto-below", space: "team-a-dev", labels: ["autoattach:*"])
            try await post("contexts", "auto-sibling", space: "team-b", labels: ["autoattach:prod"])
            try await put("stacks/api", "OWN", "stack")
            for context in ["first", "b-tie", "a-tie", "auto-prod", "auto-all", "auto-other", "auto-below", "auto-sibling"] {
                try await put("contexts/\(context)", "OWN", context)
                try await put("contexts/\(context)", "FROM_\(context.uppercased().replacingOccurrences(of: "-", with: "_"))", "x")
                try await put("contexts/\(context)", "SHARED", context)
            }
            try await put("contexts/a-tie", "TIE", "a-tie")
            try await put("contexts/b-tie", "TIE", "b-tie")
            try await put("contexts/auto-all", "AUTO", "auto-all")
            try await put("contexts/auto-prod", "AUTO", "auto-prod")
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/first", token: writer, json: ["priority": 0]).status == .ok)
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/b-tie", token: writer, json: ["priority": 5]).status == .ok)
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/a-tie", token: writer, json: ["priority": 5]).status == .ok)
            // A context from a sibling or a lower space cannot be attached explicitly.
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/auto-sibling", token: writer, json: ["priority": 1]).errorCode == "context_out_of_reach")
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/auto-below", token: writer, json: ["priority": 1]).errorCode == "context_out_of_reach")

            func resolved() async throws -> [String: String] {
                let reply = try await fixture.request(.get, "/api/v1/stacks/api/runtime-config", token: worker)
                #expect(reply.status == .ok, "\(reply.text)")
                return Dictionary(uniqueKeysWithValues: reply.items.map { ($0["id"] as! String, "\($0["value"]!)@\($0["source"]!)") })
            }
            var values = try await resolved()
            #expect(values["OWN"] == "stack@stack")
            #expect(values["SHARED"] == "first@context:first")
            #expect(values["TIE"] == "a-tie@context:a-tie")
            // Auto-attached come last, by context id: auto-all before auto-prod.
            #expect(values["AUTO"] == "auto-all@context:auto-all")
            #expect(values["FROM_AUTO_PROD"] == "x@context:auto-prod")
            #expect(values["FROM_AUTO_ALL"] == "x@context:auto-all")
            // Not attached: another label, a space below the stack's, a sibling space.
            #expect(values["FROM_AUTO_OTHER"] == nil)
            #expect(values["FROM_AUTO_BELOW"] == nil)
            #expect(values["FROM_AUTO_SIBLING"] == nil)

            // An explicit attachment of an auto context ranks it by its priority instead.
            #expect(try await fixture.request(.put, "/api/v1/stacks/api/contexts/auto-prod", token: writer, json: ["priority": 1]).status == .ok)
            values = try await resolved()
            #expect(values["AUTO"] == "auto-prod@context:auto-prod")
            #expect(values["SHARED"] == "first@context:first")
            // Changing the stack's labels changes what attaches.
            #expect(try await fixture.request(.patch, "/api/v1/stacks/api", token: writer, json: ["labels": ["staging"]]).status == .ok)
            values = try await resolved()
            #expect(values["FROM_AUTO_OTHER"] == "x@context:auto-other")
            // Moving the stack where an attached context is out of reach is refused.
            let move = try await fixture.request(.patch, "/api/v1/stacks/api", token: writer, json: ["space": "team-b"])
            #expect(move.status == .conflict, "\(move.text)")
        }
    }

    @Test func historyKeepsEveryVersionAndRestoreMakesOneCurrent() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let reader = try await fixture.token(.read)
            let worker = try await fixture.token(.worker)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            let path = "/api/v1/stacks/app/config/TOKEN"
            func put(_ value: String, writeOnly: Bool) async throws -> FixtureReply {
                try await fixture.request(.put, path, token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": value, "write_only": writeOnly])
            }
            #expect(try await put("one", writeOnly: false).json["version"] as? Int == 1)
            #expect(try await put("two-secret", writeOnly: true).json["version"] as? Int == 2)
            #expect(try await put("three", writeOnly: false).json["version"] as? Int == 3)
            // The same value again is no change: no new version.
            let same = try await put("three", writeOnly: false)
            #expect(same.status == .ok && same.json["version"] as? Int == 3)

            func runtimeValue() async throws -> String? {
                try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker).items.first { $0["id"] as? String == "TOKEN" }?["value"] as? String
            }
            let versions = try await fixture.request(.get, "\(path)/versions", token: reader)
            #expect(versions.status == .ok)
            #expect(versions.items.map { $0["version"] as? Int } == [3, 2, 1])
            #expect(versions.items.map { $0["value"] as? String } == ["three", nil, "one"])
            #expect(versions.items[1]["value"] is NSNull)
            #expect(versions.items[1]["write_only"] as? Bool == true)
            #expect(!versions.text.contains("two-secret"))
            #expect(versions.items.allSatisfy { ($0["author"] as? String)?.hasPrefix("ak_") == true && $0["checksum"] is String })
            let paged = try await fixture.request(.get, "\(path)/versions?limit=2", token: reader)
            #expect(paged.items.count == 2)
            let cursor = try #require(paged.json["next_cursor"] as? String)
            #expect(try await fixture.request(.get, "\(path)/versions?limit=2&cursor=\(cursor)", token: reader).items.map { $0["version"] as? Int } == [1])

            // Restore version 1: it becomes current as version 4, and runtime config serves it.
            let restored = try await fixture.request(.post, "\(path)/versions/1/restore", token: writer)
            #expect(restored.status == .ok, "\(restored.text)")
            #expect(restored.json["version"] as? Int == 4)
            #expect(try await runtimeValue() == "one")
            // Restore the write-only version: it stays write-only and serves its value to runners.
            let secret = try await fixture.request(.post, "\(path)/versions/2/restore", token: writer)
            #expect(secret.json["write_only"] as? Bool == true && secret.json["value"] is NSNull)
            #expect(try await runtimeValue() == "two-secret")
            #expect(try await fixture.request(.post, "\(path)/versions/99/restore", token: writer).status == .notFound)
            #expect(try await fixture.request(.post, "\(path)/versions/zero/restore", token: writer).status == .badRequest)
            // A deleted element keeps its history and comes back by restore.
            #expect(try await fixture.request(.delete, path, token: writer).status == .noContent)
            #expect(try await runtimeValue() == nil)
            #expect(try await fixture.request(.get, "\(path)/versions", token: reader).items.count == 5)
            #expect(try await fixture.request(.post, "\(path)/versions/3/restore", token: writer).json["version"] as? Int == 6)
            #expect(try await runtimeValue() == "three")
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/config/NEVER/versions", token: reader).status == .notFound)
        }
    }

    @Test func theAuditTrailListsEveryActionOfASessionAndNoValue() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let writer = try await fixture.tokenAndKey(.write)
            let worker = try await fixture.tokenAndKey(.worker)
            let reader = try await fixture.token(.read)
            let secretValue = "audit-must-not-see-\(UUID().uuidString)"
            let session: [(String, HTTPRequest.Method, String, Any?, String)] = [
                (writer.token, .post, "/api/v1/stacks", ["id": "app", "name": "App"], "stack.create"),
                (writer.token, .post, "/api/v1/contexts", ["id": "ctx", "name": "Ctx"], "context.create"),
                (writer.token, .put, "/api/v1/stacks/app/config/PASSWORD", ["type": "ENVIRONMENT_VARIABLE", "value": secretValue, "write_only": true], "config.put"),
                (writer.token, .put, "/api/v1/stacks/app/contexts/ctx", ["priority": 2], "attachment.put"),
                (writer.token, .patch, "/api/v1/stacks/app", ["description": "payments"], "stack.update"),
                (worker.token, .get, "/api/v1/stacks/app/runtime-config", nil, "runtime_config.read"),
                (writer.token, .post, "/api/v1/stacks/app/config/PASSWORD/versions/1/restore", nil, "config.restore"),
                (writer.token, .delete, "/api/v1/stacks/app/contexts/ctx", nil, "attachment.delete"),
                (writer.token, .delete, "/api/v1/stacks/app/config/PASSWORD", nil, "config.delete"),
                (reader, .delete, "/api/v1/stacks/app", nil, "stack.delete"),
                (writer.token, .delete, "/api/v1/contexts/ctx", nil, "context.delete"),
                (admin, .post, "/api/v1/spaces", ["id": "team", "name": "Team"], "space.create"),
            ]
            var requestIDs: [String: String] = [:]
            for (index, (token, method, path, body, action)) in session.enumerated() {
                let requestID = "session-\(index)"
                let reply = try await fixture.request(method, path, token: token, json: body, requestID: requestID)
                #expect(reply.requestID == requestID)
                requestIDs[requestID] = action
            }
            let events = try await fixture.request(.get, "/api/v1/audit-events?limit=500", token: admin)
            #expect(events.status == .ok)
            #expect(!events.text.contains(secretValue))
            let byRequest = Dictionary(grouping: events.items, by: { $0["request_id"] as? String ?? "" })
            for (requestID, action) in requestIDs {
                let recorded = byRequest[requestID] ?? []
                #expect(recorded.contains { $0["action"] as? String == action }, "\(requestID) \(action) missing")
            }
            // The refused delete by the reader is recorded as denied; the others succeeded.
            let denied = try #require(byRequest["session-9"]?.first)
            #expect(denied["outcome"] as? String == "denied")
            #expect(byRequest["session-0"]?.first?["outcome"] as? String == "success")
            #expect(byRequest["session-0"]?.first?["actor"] as? String == writer.keyID)
            #expect(byRequest["session-5"]?.first?["actor"] as? String == worker.keyID)
            // Tokens issued are audited too (each fixture token above).
            #expect(events.items.contains { $0["action"] as? String == "token.issue" && $0["actor"] as? String == worker.keyID })
            // Newest first, filters and pagination.
            let ids = events.items.compactMap { Int($0["id"] as? String ?? "") }
            #expect(ids == ids.sorted(by: >))
            let puts = try await fixture.request(.get, "/api/v1/audit-events?action=config.put", token: admin)
            #expect(puts.items.count == 1 && puts.items[0]["resource"] as? String == "stack:app/config/PASSWORD")
            let mine = try await fixture.request(.get, "/api/v1/audit-events?actor=\(worker.keyID)&resource=stack:app*", token: admin)
            #expect(mine.items.map { $0["action"] as? String } == ["runtime_config.read"])
            let first = try await fixture.request(.get, "/api/v1/audit-events?limit=3", token: admin)
            let cursor = try #require(first.json["next_cursor"] as? String)
            let second = try await fixture.request(.get, "/api/v1/audit-events?limit=3&cursor=\(cursor)", token: admin)
            #expect(Set(first.items.compactMap { $0["id"] as? String }).isDisjoint(with: second.items.compactMap { $0["id"] as? String }))
            #expect(try await fixture.request(.get, "/api/v1/audit-events?since=yesterday", token: admin).status == .badRequest)
            #expect(try await fixture.request(.get, "/api/v1/audit-events?outcome=maybe", token: admin).status == .badRequest)
            #expect(try await fixture.request(.get, "/api/v1/audit-events", token: writer.token).status == .forbidden)
        }
    }

    @Test func strictBodiesRefuseUnknownFieldsBadUTF8AndNUL() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let admin = try await fixture.token(.admin)
            _ = try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"])
            let cases: [(String, String, HTTPRequest.Method, String, Data, String)] = [
                ("unknown field", writer, .post, "/api/v1/stacks", Data(#"{"id":"a","name":"A","owner":"me"}"#.utf8), "unknown_field"),
                ("unknown field in PUT", writer, .put, "/api/v1/stacks/app/config/A", Data(#"{"type":"ENVIRONMENT_VARIABLE","value":"x","secret":true}"#.utf8), "unknown_field"),
                ("bad UTF-8", writer, .post, "/api/v1/stacks", Data([0x7b, 0x22, 0x69, 0x64, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]), "invalid_json"),
                ("array body", writer, .post, "/api/v1/stacks", Data("[1,2]".utf8), "invalid_json"),
                ("NUL in name", writer, .post, "/api/v1/stacks", Data(#"{"id":"nul","name":"a\u0000b"}"#.utf8), "invalid_name"),
                ("NUL in description", writer, .patch, "/api/v1/stacks/app", Data(#"{"description":"a\u0000b"}"#.utf8), "invalid_description"),
                ("NUL in label", writer, .patch, "/api/v1/stacks/app", Data(#"{"labels":["a\u0000b"]}"#.utf8), "invalid_labels"),
                ("labels of numbers", writer, .patch, "/api/v1/stacks/app", Data(#"{"labels":[1]}"#.utf8), "invalid_field"),
                ("priority fraction", writer, .put, "/api/v1/stacks/app/contexts/x", Data(#"{"priority":1.5}"#.utf8), "invalid_field"),
                ("missing role", admin, .post, "/api/v1/api-keys", Data(#"{"name":"k"}"#.utf8), "invalid_field"),
                ("space id too long", admin, .post, "/api/v1/spaces", Data(#"{"id":"\#(String(repeating: "a", count: 64))","name":"x"}"#.utf8), "invalid_id"),
                ("NUL in space name", admin, .patch, "/api/v1/spaces/root", Data(#"{"name":"\u0000"}"#.utf8), "invalid_name"),
            ]
            for (name, token, method, path, body, code) in cases {
                let reply = try await fixture.request(method, path, token: token, rawBody: body)
                #expect(reply.status == .badRequest, "\(name): \(reply.status) \(reply.text)")
                #expect(reply.errorCode == code, "\(name): \(reply.text)")
            }
            // Odd path segments and filters are 4xx too.
            for path in ["/api/v1/stacks/%00", "/api/v1/stacks/app/config/%00", "/api/v1/spaces/%FF", "/api/v1/stacks/app/config/a%2F..%2Fb/versions",
                         "/api/v1/audit-events?actor=%00", "/api/v1/stacks/\(String(repeating: "x", count: 5000))"] {
                let reply = try await fixture.request(.get, path, token: admin)
                #expect((400..<500).contains(reply.status.code), "\(path): \(reply.status)")
                #expect(reply.errorCode != nil, "\(path)")
            }
        }
    }
}

typealias FixtureReply = HTTPFixture.Reply
