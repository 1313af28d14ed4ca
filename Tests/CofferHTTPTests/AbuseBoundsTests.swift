import CofferCore
@_spi(Testing) import CofferStore
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// Abuse bounds (security issue, point 3), held through the API: token requests are
/// throttled, repeated refusals become few audit rows, a stack or context holds a bounded
/// number of elements, and a page of elements or versions reads a bounded number of bytes.
@Suite struct AbuseBoundsTests {
    /// Per key id and per client address, with `Retry-After`; the refusals are audited. The
    /// rates are per hour so that no bucket refills while the test runs, however slow.
    @Test func tokenRequestsAreThrottledPerKeyAndPerAddress() async throws {
        let limits = CofferLimits(tokenRatePerAddress: .init(count: 9, seconds: 3600), tokenRatePerKey: .init(count: 3, seconds: 3600))
        try await HTTPFixture.with(limits: limits) { fixture in
            let admin = try await fixture.token(.admin)  // 1 of the address's 9
            let keyA = try await fixture.apiKeys.create(name: "a", space: "root", role: .read)
            let keyB = try await fixture.apiKeys.create(name: "b", space: "root", role: .read)
            let keyC = try await fixture.apiKeys.create(name: "c", space: "root", role: .read)
            func ask(_ key: APIKeyService.Created, secret: String? = nil) async throws -> HTTPFixture.Reply {
                try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": key.record.id, "api_key_secret": secret ?? key.secret])
            }
            // A guess spends the key's budget as a login does.
            #expect(try await ask(keyA, secret: "cfs_wrong").status == .unauthorized)
            #expect(try await ask(keyA).status == .ok)
            #expect(try await ask(keyA).status == .ok)
            let perKey = try await ask(keyA)
            #expect(perKey.status == .tooManyRequests)
            #expect(perKey.errorCode == "too_many_requests")
            #expect(perKey.text.contains("COFFER_TOKEN_RATE_PER_KEY=3/h"), "\(perKey.text)")
            let keyWait = perKey.headers[.retryAfter].flatMap { Int($0) }
            #expect(keyWait.map { (1...1200).contains($0) } == true, "Retry-After: \(perKey.headers[.retryAfter] ?? "none")")
            // Another key is not held back by the first one's bound.
            for _ in 0..<3 { #expect(try await ask(keyB).status == .ok) }
            #expect(try await ask(keyC).status == .ok)  // the address's 9th
            let perAddress = try await ask(keyC)
            #expect(perAddress.status == .tooManyRequests)
            #expect(perAddress.text.contains("COFFER_TOKEN_RATE_PER_ADDRESS=9/h"), "\(perAddress.text)")
            let addressWait = perAddress.headers[.retryAfter].flatMap { Int($0) }
            #expect(addressWait.map { (1...400).contains($0) } == true, "Retry-After: \(perAddress.headers[.retryAfter] ?? "none")")

            let events = try await fixture.request(.get, "/api/v1/audit-events?action=token.issue&outcome=denied&limit=500", token: admin)
            #expect(events.status == .ok)
            let details = events.items.map { "\($0["resource"] as? String ?? "") \($0["detail"] as? String ?? "")" }
            #expect(details.contains("api_key:\(keyA.record.id) throttled COFFER_TOKEN_RATE_PER_KEY=3/h"), "\(details)")
            #expect(details.contains("api_key:\(keyC.record.id) throttled COFFER_TOKEN_RATE_PER_ADDRESS=9/h"), "\(details)")
        }
    }

    /// Twelve identical refusals are recorded as the first one and one event counting the
    /// rest when the window ends, not as twelve rows.
    @Test func repeatedRefusalsAreGatheredInTheAuditTrail() async throws {
        try await HTTPFixture.with(limits: CofferLimits(refusalWindow: 5)) { fixture in
            let admin = try await fixture.token(.admin)
            let key = try await fixture.apiKeys.create(name: "target", space: "root", role: .read)
            for _ in 0..<12 {
                let reply = try await fixture.request(.post, "/api/v1/auth/token", json: ["api_key_id": key.record.id, "api_key_secret": "cfs_guess"])
                #expect(reply.status == .unauthorized)
            }
            var rows: [[String: Any]] = []
            var counted = 0
            for _ in 0..<100 {
                let events = try await fixture.request(
                    .get, "/api/v1/audit-events?action=token.issue&outcome=denied&resource=api_key:\(key.record.id)&limit=500", token: admin
                )
                rows = events.items
                counted = rows.reduce(0) { total, row in
                    let detail = row["detail"] as? String ?? ""
                    let repeats = detail.split(separator: " ").first { $0.hasPrefix("repeats=") }.flatMap { Int($0.dropFirst(8)) }
                    return total + (repeats ?? 1)
                }
                if counted >= 12 { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(counted == 12, "\(rows)")
            // Twelve requests take well under one 5 s window: the first row and one summary
            // (two of each if they straddled a window's end).
            #expect(rows.count <= 4, "\(rows.count) rows for 12 refusals")
            #expect(rows.contains { ($0["detail"] as? String)?.contains("over=5s") == true }, "\(rows)")
        }
    }

    /// A stack holds at most `maxElementsPerOwner` elements, also when new ones are written
    /// at once or a deleted one is restored; changing an existing element stays possible.
    @Test func aStackHoldsABoundedNumberOfElements() async throws {
        try await HTTPFixture.with(limits: CofferLimits(maxElementsPerOwner: 3)) { fixture in
            let writer = try await fixture.token(.write)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "race", "name": "Race"]).status == .created)
            for name in ["A", "B", "C"] {
                #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/\(name)", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "v"]).status == .created)
            }
            let refused = try await fixture.request(.put, "/api/v1/stacks/app/config/D", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "v"])
            #expect(refused.status == .conflict)
            #expect(refused.errorCode == "too_many_elements")
            #expect(refused.text.contains("COFFER_MAX_ELEMENTS_PER_OWNER") && refused.text.contains("3"), "\(refused.text)")
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/A", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "changed"]).status == .ok)
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app/config/B", token: writer).status == .noContent)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/D", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "v"]).status == .created)
            let restore = try await fixture.request(.post, "/api/v1/stacks/app/config/B/versions/1/restore", token: writer)
            #expect(restore.status == .conflict)
            #expect(restore.errorCode == "too_many_elements")
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/config", token: writer).items.count == 3)

            // Ten new elements at once: the bound holds in the database, not in one replica.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for index in 0..<10 {
                    group.addTask {
                        try await fixture.request(.put, "/api/v1/stacks/race/config/V\(index)", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "v"]).status
                    }
                }
                return try await group.reduce(into: [HTTPResponse.Status]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == .created }.count == 3, "\(statuses)")
            #expect(statuses.filter { $0 == .conflict }.count == 7, "\(statuses)")
            #expect(try await fixture.request(.get, "/api/v1/stacks/race/config", token: writer).items.count == 3)
        }
    }

    /// A page of elements or of versions reads at most `maxPageBytes` of stored values and
    /// ends early with a cursor; following the cursors gives every item once. Write-only
    /// values do not count, and are not read: one whose stored bytes are garbage lists fine.
    @Test func aPageReadsABoundedNumberOfBytes() async throws {
        try await HTTPFixture.with(limits: CofferLimits(maxPageBytes: 64 * 1024)) { fixture in
            let writer = try await fixture.token(.write)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            let big = Data(repeating: 0x61, count: 30_000).base64EncodedString()
            for index in 1...5 {
                let put = try await fixture.request(.put, "/api/v1/stacks/app/config/f\(index)", token: writer, json: ["type": "FILE_MOUNT", "value": big])
                #expect(put.status == .created)
            }
            let hidden = try await fixture.request(.put, "/api/v1/stacks/app/config/f3h", token: writer,
                                                   json: ["type": "FILE_MOUNT", "value": big, "write_only": true])
            #expect(hidden.status == .created)
            try await fixture.database.withConnection { connection in
                try await connection.query("UPDATE config_elements SET sealed_value = '\\x0100'::bytea WHERE config_id = 'f3h'", logger: Logger(label: "t"))
            }

            var pages: [[String]] = []
            var cursor: String?
            repeat {
                let path = "/api/v1/stacks/app/config?limit=500" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await fixture.request(.get, path, token: writer)
                #expect(page.status == .ok, "\(page.status) \(page.text.prefix(200))")
                pages.append(page.items.compactMap { $0["id"] as? String })
                cursor = page.json["next_cursor"] as? String
            } while cursor != nil && pages.count < 10
            // Two 30 kB values fit in 64 KiB, three do not; the write-only one counts nothing.
            #expect(pages == [["f1", "f2"], ["f3", "f3h", "f4"], ["f5"]], "\(pages)")

            for letter: UInt8 in 0x62...0x65 {
                let value = Data(repeating: letter, count: 30_000).base64EncodedString()
                #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/f1", token: writer, json: ["type": "FILE_MOUNT", "value": value]).status == .ok)
            }
            let first = try await fixture.request(.get, "/api/v1/stacks/app/config/f1/versions?limit=500", token: writer)
            #expect(first.status == .ok)
            #expect(first.items.count == 2, "\(first.items.count) versions on the first page")
            #expect(first.json["next_cursor"] is String)
        }
    }
}
