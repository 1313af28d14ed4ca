import CofferCrypto
import CofferTestSupport
import Crypto
import Foundation
import Hummingbird
import Testing

@Suite struct ConfigRouteTests {
    @Test func stacksAndContextsHaveCRUD() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            for kind in ["stacks", "contexts"] {
                let created = try await fixture.request(.post, "/api/v1/\(kind)", token: writer,
                                                        json: ["id": "prod", "name": "Production", "space": "root", "labels": ["team:a"], "description": "d"])
                #expect(created.status == .created)
                #expect(created.json["id"] as? String == "prod")
                #expect(created.json["labels"] as? [String] == ["team:a"])
                #expect(try await fixture.request(.post, "/api/v1/\(kind)", token: writer, json: ["id": "prod", "name": "again"]).status == .conflict)
                #expect(try await fixture.request(.post, "/api/v1/\(kind)", token: writer, json: ["id": "Bad Id", "name": "x"]).status == .badRequest)
                #expect(try await fixture.request(.post, "/api/v1/\(kind)", token: writer, json: ["id": "x", "name": "x", "space": "nowhere"]).status == .unprocessableContent)
                for index in 0..<3 {
                    _ = try await fixture.request(.post, "/api/v1/\(kind)", token: writer, json: ["id": "s\(index)", "name": "n"])
                }
                let page = try await fixture.request(.get, "/api/v1/\(kind)?limit=2", token: writer)
                #expect(page.items.count == 2)
                let cursor = try #require(page.json["next_cursor"] as? String)
                let rest = try await fixture.request(.get, "/api/v1/\(kind)?limit=2&cursor=\(cursor)", token: writer)
                #expect(rest.items.map { $0["id"] as? String } == ["s1", "s2"])
                #expect(rest.json["next_cursor"] is NSNull)
                #expect(try await fixture.request(.get, "/api/v1/\(kind)?limit=501", token: writer).status == .badRequest)
                #expect(try await fixture.request(.get, "/api/v1/\(kind)/prod", token: writer).json["name"] as? String == "Production")
                #expect(try await fixture.request(.delete, "/api/v1/\(kind)/prod", token: writer).status == .noContent)
                let gone = try await fixture.request(.get, "/api/v1/\(kind)/prod", token: writer)
                #expect(gone.status == .notFound)
                #expect(gone.errorCode == "not_found")
            }
        }
    }

    @Test func writeOnlyValuesAreHiddenExceptFromWorkersRuntimeConfig() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let reader = try await fixture.token(.read)
            let admin = try await fixture.token(.admin)
            let worker = try await fixture.token(.worker)
            _ = try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"])
            let put = try await fixture.request(.put, "/api/v1/stacks/app/config/DB_PASSWORD", token: writer,
                                                json: ["type": "ENVIRONMENT_VARIABLE", "value": "hunter2", "write_only": true])
            #expect(put.status == .created)
            #expect(put.json["value"] is NSNull)
            let file = Data("[db]\nhost = x\n".utf8)
            let filePut = try await fixture.request(.put, "/api/v1/stacks/app/config/conf%2Fdb.ini", token: writer,
                                                    json: ["type": "FILE_MOUNT", "value": file.base64EncodedString(), "write_only": false])
            #expect(filePut.status == .created)
            #expect(filePut.json["id"] as? String == "conf/db.ini")

            let listed = try await fixture.request(.get, "/api/v1/stacks/app/config", token: reader)
            #expect(listed.status == .ok)
            let password = try #require(listed.items.first { $0["id"] as? String == "DB_PASSWORD" })
            #expect(password["value"] is NSNull)
            #expect(password["write_only"] as? Bool == true)
            #expect(password["checksum"] as? String == Hex.encode(Array(SHA256.hash(data: Array("hunter2".utf8)))))
            #expect(!String(decoding: listed.body, as: UTF8.self).contains("hunter2"))
            #expect(listed.items.first { $0["id"] as? String == "conf/db.ini" }?["value"] as? String == file.base64EncodedString())

            // One element: a write-only value is withheld there too; a missing one is a 404.
            let one = try await fixture.request(.get, "/api/v1/stacks/app/config/DB_PASSWORD", token: reader)
            #expect(one.status == .ok)
            #expect(one.json["value"] is NSNull)
            #expect(one.json["checksum"] as? String == password["checksum"] as? String)
            #expect(!String(decoding: one.body, as: UTF8.self).contains("hunter2"))
            let oneFile = try await fixture.request(.get, "/api/v1/stacks/app/config/conf%2Fdb.ini", token: reader)
            #expect(oneFile.json["value"] as? String == file.base64EncodedString())
            #expect(oneFile.json["version"] as? Int == 1)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/config/NOPE", token: reader).status == .notFound)
            #expect(try await fixture.request(.get, "/api/v1/stacks/nope/config/DB_PASSWORD", token: reader).status == .notFound)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/config/DB_PASSWORD", token: worker).status == .forbidden)

            let runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            #expect(runtime.status == .ok)
            let item = try #require(runtime.items.first { $0["id"] as? String == "DB_PASSWORD" })
            #expect(item["value"] as? String == "hunter2")
            #expect(item["source"] as? String == "stack")
            #expect(item["write_only"] as? Bool == true)
            #expect(item["type"] as? String == "ENVIRONMENT_VARIABLE")

            // Roles: admin is not worker; read cannot write; worker cannot list elements.
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: admin).status == .forbidden)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: reader).status == .forbidden)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/config/X", token: reader, json: ["type": "ENVIRONMENT_VARIABLE", "value": "1"]).status == .forbidden)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app/config", token: worker).status == .forbidden)
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app", token: reader).status == .forbidden)
            #expect(try await fixture.request(.get, "/api/v1/stacks/app", token: worker).status == .ok)

            #expect(try await fixture.request(.delete, "/api/v1/stacks/app/config/DB_PASSWORD", token: writer).status == .noContent)
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app/config/DB_PASSWORD", token: writer).status == .notFound)
        }
    }

    @Test func attachedContextsResolveByPriority() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            let worker = try await fixture.token(.worker)
            _ = try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"])
            for context in ["shared", "team"] {
                _ = try await fixture.request(.post, "/api/v1/contexts", token: writer, json: ["id": context, "name": context])
                _ = try await fixture.request(.put, "/api/v1/contexts/\(context)/config/REGION", token: writer,
                                              json: ["type": "ENVIRONMENT_VARIABLE", "value": "from-\(context)"])
            }
            _ = try await fixture.request(.put, "/api/v1/contexts/shared/config/ONLY_SHARED", token: writer,
                                          json: ["type": "ENVIRONMENT_VARIABLE", "value": "s"])
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/contexts/shared", token: writer, json: ["priority": 10]).status == .ok)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/contexts/team", token: writer, json: ["priority": 1]).status == .ok)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/contexts/nope", token: writer, json: ["priority": 1]).status == .notFound)
            #expect(try await fixture.request(.put, "/api/v1/stacks/app/contexts/team", token: writer, json: ["priority": -1]).status == .badRequest)

            var runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            var values = Dictionary(uniqueKeysWithValues: runtime.items.map { ($0["id"] as! String, "\($0["value"]!)@\($0["source"]!)") })
            #expect(values == ["REGION": "from-team@context:team", "ONLY_SHARED": "s@context:shared"])

            _ = try await fixture.request(.put, "/api/v1/stacks/app/config/REGION", token: writer, json: ["type": "ENVIRONMENT_VARIABLE", "value": "own"])
            #expect(try await fixture.request(.delete, "/api/v1/stacks/app/contexts/shared", token: writer).status == .noContent)
            runtime = try await fixture.request(.get, "/api/v1/stacks/app/runtime-config", token: worker)
            values = Dictionary(uniqueKeysWithValues: runtime.items.map { ($0["id"] as! String, "\($0["value"]!)@\($0["source"]!)") })
            #expect(values == ["REGION": "own@stack"])
        }
    }

    @Test func badInputIsA4xxWithTheJSONErrorBodyNeverA5xx() async throws {
        try await HTTPFixture.with { fixture in
            let writer = try await fixture.token(.write)
            _ = try await fixture.request(.post, "/api/v1/stacks", token: writer, json: ["id": "app", "name": "App"])
            let big = String(repeating: "a", count: 256 * 1024 + 1)
            let bodies: [(String, HTTPRequest.Method, String, Data)] = [
                ("invalid JSON", .put, "/api/v1/stacks/app/config/A", Data("{\"type\":".utf8)),
                ("wrong type", .put, "/api/v1/stacks/app/config/A", Data(#"{"type":"ENVIRONMENT_VARIABLE","value":5}"#.utf8)),
                ("unknown element type", .put, "/api/v1/stacks/app/config/A", Data(#"{"type":"SECRET","value":"x"}"#.utf8)),
                ("bad variable name", .put, "/api/v1/stacks/app/config/1A", Data(#"{"type":"ENVIRONMENT_VARIABLE","value":"x"}"#.utf8)),
                ("file not base64", .put, "/api/v1/stacks/app/config/f.txt", Data(#"{"type":"FILE_MOUNT","value":"%%%"}"#.utf8)),
                ("path traversal", .put, "/api/v1/stacks/app/config/..%2Fetc", Data(#"{"type":"FILE_MOUNT","value":"eA=="}"#.utf8)),
                ("value too large", .put, "/api/v1/stacks/app/config/BIG", Data(#"{"type":"ENVIRONMENT_VARIABLE","value":"\#(big)"}"#.utf8)),
                ("body too large", .put, "/api/v1/stacks/app/config/HUGE", Data(repeating: 0x20, count: 4 * 1024 * 1024 + 10)),
                ("missing stack", .put, "/api/v1/stacks/missing/config/A", Data(#"{"type":"ENVIRONMENT_VARIABLE","value":"x"}"#.utf8)),
                ("bad cursor", .get, "/api/v1/stacks?cursor=%25%25", Data()),
                ("unknown route", .get, "/api/v1/nothing-here", Data()),
            ]
            for (name, method, uri, body) in bodies {
                let reply = try await fixture.request(method, uri, token: writer, rawBody: body.isEmpty ? nil : body)
                #expect((400..<500).contains(reply.status.code), "\(name): \(reply.status)")
                #expect(reply.errorCode != nil, "\(name): JSON error body")
            }
            let tooLarge = try await fixture.request(.put, "/api/v1/stacks/app/config/BIG", token: writer,
                                                     json: ["type": "ENVIRONMENT_VARIABLE", "value": big])
            #expect(tooLarge.status == .contentTooLarge)
        }
    }
}
