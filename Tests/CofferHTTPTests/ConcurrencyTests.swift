import CofferCore
@_spi(Testing) import CofferStore
import Foundation
import Hummingbird
import Logging
import PostgresNIO
import Testing

/// Writers racing each other and the key lifecycle, through the API on real PostgreSQL.
@Suite struct ConcurrencyTests {
    static func variable(_ value: String, writeOnly: Bool = false) -> [String: Any] {
        ["type": "ENVIRONMENT_VARIABLE", "value": value, "write_only": writeOnly]
    }

    @Test func twoWritersOnOneElementLeaveContiguousVersionsAndLoseNone() async throws {
        try await HTTPFixture.with { fixture in
            let first = try await fixture.token(.write)
            let second = try await fixture.token(.write)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: first, json: ["id": "app", "name": "App"]).status == .created)
            let writes = 40
            let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
                for (writer, token) in [("a", first), ("b", second)] {
                    group.addTask {
                        var values: [String] = []
                        for index in 0..<writes {
                            let value = "\(writer)-\(index)"
                            let reply = try await fixture.request(.put, "/api/v1/stacks/app/config/SHARED", token: token, json: Self.variable(value))
                            if reply.status == .ok || reply.status == .created { values.append(value) }
                        }
                        return values
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(acknowledged.count == 2 * writes)
            let history = try await fixture.request(.get, "/api/v1/stacks/app/config/SHARED/versions?limit=500", token: first)
            let versions = history.items.compactMap { $0["version"] as? Int }
            // Newest first, numbered 1...80 with no gap and no duplicate.
            #expect(versions == Array((1...(2 * writes)).reversed()), "versions: \(versions)")
            #expect(Set(history.items.compactMap { $0["value"] as? String }) == Set(acknowledged))
            // Each writer's own values appear in the order it wrote them.
            for writer in ["a", "b"] {
                let own = history.items.reversed().compactMap { $0["value"] as? String }.filter { $0.hasPrefix("\(writer)-") }
                #expect(own == (0..<writes).map { "\(writer)-\($0)" })
            }
            // The current value is the newest version.
            let current = try await fixture.request(.get, "/api/v1/stacks/app/config/SHARED", token: first)
            #expect(current.json["value"] as? String == history.items.first?["value"] as? String)
        }
    }

    @Test func rotationRewrapAndDestructionRacingWritesLoseNothing() async throws {
        try await HTTPFixture.with { fixture in
            let admin = try await fixture.token(.admin)
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker)
            #expect(try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"]).status == .created)
            for index in 0..<20 {
                #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/VAR_\(index)", token: writer,
                                                  json: Self.variable("initial-\(index)", writeOnly: index % 2 == 0)).status == .created)
            }
            // Writers keep rewriting every element while an admin rotates with and without a
            // rewrap and destroys the first data key version (its job runs concurrently too).
            let last = try await withThrowingTaskGroup(of: [String: String].self) { group in
                for lane in 0..<2 {
                    group.addTask {
                        var latest: [String: String] = [:]
                        for round in 0..<15 {
                            for index in stride(from: lane, to: 20, by: 2) {
                                let value = "round-\(round)-\(index)"
                                // A write that meets a key retired under it may answer 503 (retry),
                                // as a client would; anything else is a failure.
                                for attempt in 1... {
                                    let reply = try await fixture.request(.put, "/api/v1/stacks/app/config/VAR_\(index)", token: writer,
                                                                          json: Self.variable(value, writeOnly: index % 2 == 0))
                                    if reply.status == .ok { break }
                                    guard reply.status == .serviceUnavailable, attempt < 5 else {
                                        throw TestFailure("write answered \(reply.status): \(reply.text)")
                                    }
                                }
                                latest["VAR_\(index)"] = value
                            }
                        }
                        return latest
                    }
                }
                group.addTask {
                    for rewrap in [false, true, false] {
                        let reply = try await fixture.request(.post, "/api/v1/keys/rotate", token: admin, json: ["rewrap": rewrap])
                        guard reply.status == .ok else { throw TestFailure("rotate answered \(reply.status): \(reply.text)") }
                    }
                    let destroy = try await fixture.request(.delete, "/api/v1/keys/versions/database-v1", token: admin)
                    guard destroy.status == .accepted else { throw TestFailure("destroy answered \(destroy.status): \(destroy.text)") }
                    _ = try await fixture.keys.runPendingJobs()
                    return [:]
                }
                return try await group.reduce(into: [:]) { $0.merge($1) { $1 } }
            }
            #expect(last.count == 20)
            // The destruction finished: nothing is sealed under database-v1 any more.
            _ = try await fixture.keys.runPendingJobs()
            let jobs = try await fixture.request(.get, "/api/v1/keys/destruction-jobs", token: admin)
            #expect(jobs.items.first?["state"] as? String == "completed", "\(jobs.text)")
            let remaining = try await fixture.database.withConnection { connection in
                try await connection.query(
                    "SELECT (SELECT count(*) FROM config_elements WHERE dek_version = 1) + (SELECT count(*) FROM config_element_versions WHERE dek_version = 1)",
                    logger: Logger(label: "t")
                ).collect().first!.decode(Int.self)
            }
            #expect(remaining == 0)
            // Every element holds its last acknowledged write, every version still opens.
            let runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            #expect(runtime.status == .ok)
            let values = Dictionary(uniqueKeysWithValues: runtime.items.map { ($0["id"] as! String, $0["value"] as! String) })
            #expect(values == last)
            for index in [0, 7, 19] {
                let history = try await fixture.request(.get, "/api/v1/stacks/app/config/VAR_\(index)/versions?limit=500", token: writer)
                #expect(history.status == .ok)
                #expect(history.items.compactMap { $0["version"] as? Int } == Array((1...16).reversed()))
                let restore = try await fixture.request(.post, "/api/v1/stacks/app/config/VAR_\(index)/versions/1/restore", token: writer)
                #expect(restore.status == .ok, "\(restore.text)")
            }
            let restored = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            let after = Dictionary(uniqueKeysWithValues: restored.items.map { ($0["id"] as! String, $0["value"] as! String) })
            #expect(after["VAR_7"] == "initial-7" && after["VAR_0"] == "initial-0")
        }
    }
}
