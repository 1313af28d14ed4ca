import CofferCore
import CofferCrypto
import CofferTestSupport
import Foundation
import Hummingbird
import Testing

/// The security promises of docs/security.md, held through the API.
@Suite struct SecurityRouteTests {
    /// A space admin cannot mint a worker key and read its writers' write-only values.
    @Test func aSpaceAdminCannotGrantTheWorkerRole() async throws {
        try await HTTPFixture.with { fixture in
            let root = try await fixture.token(.admin)
            #expect(try await fixture.request(.post, "/api/v1/spaces", token: root, json: ["id": "team", "name": "Team", "parent": "root"]).status == .created)
            let teamAdmin = try await fixture.token(.admin, space: "team")
            let refused = try await fixture.request(.post, "/api/v1/api-keys", token: teamAdmin, json: ["name": "mine", "space": "team", "role": "worker"])
            #expect(refused.status == .forbidden)
            #expect(refused.errorCode == "role_not_grantable")
            #expect(try await fixture.request(.post, "/api/v1/api-keys", token: teamAdmin, json: ["name": "reader", "space": "team", "role": "read"]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/api-keys", token: root, json: ["name": "runner", "space": "team", "role": "worker"]).status == .created)
        }
    }

    /// A token signed with Coffer's own key but carrying a second `role` member (which a
    /// JSON parser reads as the last one) is refused at the door.
    @Test func aSignedTokenWithADuplicateClaimIsRefused() async throws {
        try await HTTPFixture.with { fixture in
            let (token, _) = try await fixture.tokenAndKey(.read)
            let parts = token.split(separator: ".")
            let claims = String(decoding: Base64URL.decode(parts[1])!, as: UTF8.self)
            let forged = claims.replacingOccurrences(of: #""role":"read""#, with: #""role":"read","role":"admin""#)
            #expect(forged != claims)
            let input = String(parts[0]) + "." + Base64URL.encode(Array(forged.utf8))
            let signed = input + "." + Base64URL.encode(try TestKeys.primary.signRS256(Array(input.utf8)))
            let reply = try await fixture.request(.get, "/api/v1/api-keys", token: signed)
            #expect(reply.status == .unauthorized)
            #expect(reply.errorCode == "invalid_token")
            #expect(try await fixture.request(.get, "/api/v1/stacks", token: token).status == .ok)
        }
    }

    /// Auto-attachment is a trust decision: the audit row of a runtime-config read names each
    /// automatically attached context and the stack labels that attached it.
    @Test func theAuditOfARuntimeConfigReadNamesTheLabelsThatAutoAttached() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App", "labels": ["team-a", "prod"]]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": "shared-db", "name": "DB", "labels": ["autoattach:team-a"]]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": "everything", "name": "All", "labels": ["autoattach:*"]]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": "other", "name": "Other", "labels": ["autoattach:team-b"]]).status == .created)
            let worker = try await fixture.token(.worker)
            let read = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker).status
            #expect(read == .ok)
            let events = try await fixture.request(.get, "/api/v1/audit-events?action=runtime_config.read", token: try await fixture.token(.admin))
            #expect(events.items.first?["detail"] as? String == "contexts=2 auto=everything:*,shared-db:team-a", "\(events.text)")
        }
    }
}

extension SecurityRouteTests {
    /// Moving a space keeps every explicit attachment valid, as moving a stack does.
    @Test func aSpaceMoveThatWouldStrandAnAttachmentIsRefused() async throws {
        try await HTTPFixture.with { fixture in
            let root = try await fixture.token(.admin)
            let writer = try await fixture.token(.write)
            for (id, parent) in [("team-a", "root"), ("team-b", "root"), ("team-a-dev", "team-a")] {
                #expect(try await fixture.request(.post, "/api/v1/spaces", token: root, json: ["id": id, "name": id, "parent": parent]).status == .created)
            }
            #expect(try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": "shared", "name": "Shared", "space": "team-a"]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App", "space": "team-a-dev"]).status == .created)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/contexts/shared", token: writer, json: ["priority": 0]).status == .ok)
            let refused = try await fixture.request(.patch, "/api/v1/spaces/team-a-dev", token: root, json: ["parent": "team-b"])
            #expect(refused.status == .conflict, "\(refused.text)")
            #expect(try await fixture.request(.get, "/api/v1/spaces/team-a-dev", token: root).json["parent"] as? String == "team-a")
            // Once detached, the move is allowed.
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app/contexts/shared", token: writer).status == .noContent)
            #expect(try await fixture.request(.patch, "/api/v1/spaces/team-a-dev", token: root, json: ["parent": "team-b"]).status == .ok)
        }
    }
}
