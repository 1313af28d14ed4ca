import CofferCore
import Foundation
import Logging
import Testing

/// The hand-written JSON log encoder: every line must parse, whatever a message or a
/// metadata value holds.
struct JSONLogHandlerTests {
    @Test func linesParseAsJSONWithEveryFieldRoundTripping() throws {
        let awkward = "quote \" backslash \\ newline \n tab \t cr \r nul \u{0} bell \u{7} del \u{7f} é ☃ 𝄞"
        let metadata: Logger.Metadata = [
            "route": "/api/v1/stacks/:id",
            "status": .stringConvertible(404),
            "awkward": .string(awkward),
            "list": .array(["a", .string(awkward)]),
            "nested": .dictionary(["b": "2", "a": .dictionary(["x": "y"])]),
            "message": "not allowed to replace the message",
        ]
        let time = Date(timeIntervalSince1970: 1_795_000_000.123)
        let bytes = JSONLogHandler.line(time: time, level: .warning, logger: "coffer", message: awkward, metadata: metadata)
        #expect(!bytes.contains(0x0a), "one line")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["message"] as? String == awkward)
        #expect(object["awkward"] as? String == awkward)
        #expect(object["level"] as? String == "warning")
        #expect(object["logger"] as? String == "coffer")
        #expect(object["status"] as? String == "404")
        #expect(object["list"] as? [String] == ["a", awkward])
        #expect((object["nested"] as? [String: Any])?["b"] as? String == "2")
        #expect(((object["nested"] as? [String: Any])?["a"] as? [String: Any])?["x"] as? String == "y")
        #expect(object["time"] as? String == "2026-11-18T11:06:40.123Z")
        // Fixed fields first, then metadata keys in byte order.
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasPrefix(#"{"time":"2026-11-18T11:06:40.123Z","level":"warning","logger":"coffer","message":"#))
        let order = ["\"awkward\":", "\"list\":", "\"nested\":", "\"route\":", "\"status\":"].map { text.range(of: $0)!.lowerBound }
        #expect(order == order.sorted())
    }
}
