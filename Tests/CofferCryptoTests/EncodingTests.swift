import CofferCrypto
import Foundation
import Testing

@Suite struct EncodingTests {
    @Test(arguments: [
        ([UInt8](), ""), ([0x66], "Zg"), ([0x66, 0x6f], "Zm8"), ([0x66, 0x6f, 0x6f], "Zm9v"),
        ([0xfb, 0xff, 0xfe], "-__-"),
    ])
    func base64URLRoundTrips(bytes: [UInt8], text: String) {
        #expect(Base64URL.encode(bytes) == text)
        #expect(Base64URL.decode(text) == bytes)
    }

    // "Zh" and "Zm9" also decode to "f" and "fo" when the unused low bits are ignored.
    @Test(arguments: ["Zg==", "Z", "Zm9v!", "Zm+v", "Zm/v", "Zm 9v", "Zh", "Zm9", "Zm-", "AB"])
    func base64URLRefusesWhatItDoesNotProduce(text: String) {
        #expect(Base64URL.decode(text) == nil)
    }

    @Test func hexIsLowercase() {
        #expect(Hex.encode([0x00, 0xab, 0xff]) == "00abff")
    }

    @Test(arguments: ["", "a.b", "a.b.c.d", "!!.e30.", "e30.e30.!!", "bm90IGpzb24.e30.", "e30.e30."])
    func malformedCompactJWSIsRefused(token: String) {
        #expect(throws: JWSError.self) { try CompactJWS(parsing: token) }
    }

    @Test func oversizedTokenIsRefusedBeforeDecoding() {
        let token = String(repeating: "a", count: CompactJWS.maximumLength + 1)
        #expect(throws: JWSError(.tooLarge, "")) { try CompactJWS(parsing: token) }
    }

    @Test func signingInputAndSerializationCompose() throws {
        let input = try CompactJWS.signingInput(header: JWSHeader(alg: "RS256", kid: "k1"), payload: Array(#"{"a":1}"#.utf8))
        let token = CompactJWS.serialize(signingInput: input, signature: [1, 2, 3])
        let parsed = try CompactJWS(parsing: token)
        #expect(parsed.header == JWSHeader(alg: "RS256", typ: "JWT", kid: "k1"))
        #expect(parsed.payload == Array(#"{"a":1}"#.utf8))
        #expect(parsed.signature == [1, 2, 3])
        #expect(parsed.signingInput == Array(input.utf8))
    }
}
