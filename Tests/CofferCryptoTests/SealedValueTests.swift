import CofferCrypto
import Crypto
import Foundation
import Testing

@Suite struct SealedValueTests {
    let key = SymmetricKey(data: Array(0..<32) as [UInt8])
    let aad = Array("coffer/config/00000000-0000-0000-0000-000000000001/DB_PASSWORD".utf8)

    /// Produced by Python `cryptography` (AESGCM, key 00..1f, nonce a0..ab, version 7):
    /// an independent implementation of the contract's sealed format.
    static let knownAnswer = "0100000007a0a1a2a3a4a5a6a7a8a9aaab8e6d125920b93095d0ecac6143cf41569ed981fe323a7d"

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    @Test func knownAnswerFromAnotherImplementationOpens() throws {
        let sealed = try SealedValue(bytes: Self.bytes(hex: Self.knownAnswer))
        #expect(sealed.keyVersion == 7)
        let plaintext = try sealed.open(key: key, version: 7, associatedData: aad)
        #expect(String(decoding: plaintext, as: UTF8.self) == "hunter2")
    }

    @Test func layoutMatchesTheContract() throws {
        let plaintext = Array("s3cr3t value".utf8)
        let sealed = try SealedValue.seal(plaintext, key: key, keyVersion: 0x0102_0304, associatedData: aad)
        #expect(sealed.bytes.count == 1 + 4 + 12 + plaintext.count + 16)
        #expect(sealed.bytes[0] == 0x01)
        #expect(Array(sealed.bytes[1..<5]) == [0x01, 0x02, 0x03, 0x04])
        #expect(sealed.keyVersion == 0x0102_0304)
        // Same plaintext twice: different nonces, different bytes.
        let again = try SealedValue.seal(plaintext, key: key, keyVersion: 0x0102_0304, associatedData: aad)
        #expect(Array(again.bytes[5..<17]) != Array(sealed.bytes[5..<17]))
        #expect(try sealed.open(key: key, version: 0x0102_0304, associatedData: aad) == plaintext)
    }

    @Test(arguments: [0, 1, 32, 1024, 65536])
    func roundTripsEverySize(size: Int) throws {
        var plaintext = [UInt8](repeating: 0, count: size)
        for index in plaintext.indices { plaintext[index] = UInt8(truncatingIfNeeded: index &* 31) }
        let sealed = try SealedValue.seal(plaintext, key: key, keyVersion: 1, associatedData: aad)
        #expect(try sealed.open(key: key, version: 1, associatedData: aad) == plaintext)
    }

    @Test func everyFlippedBitIsATypedError() throws {
        let sealed = try SealedValue.seal(Array("hunter2".utf8), key: key, keyVersion: 3, associatedData: aad)
        for bit in 0..<(sealed.bytes.count * 8) {
            var bytes = sealed.bytes
            bytes[bit / 8] ^= UInt8(1 << (bit % 8))
            #expect(throws: SealError.self, "bit \(bit) flipped must not open") {
                let tampered = try SealedValue(bytes: bytes)
                _ = try tampered.open(key: key, version: 3, associatedData: aad)
            }
        }
    }

    @Test func wrongAssociatedDataIsRefused() throws {
        let sealed = try SealedValue.seal(Array("hunter2".utf8), key: key, keyVersion: 3, associatedData: aad)
        let moved = Array("coffer/config/00000000-0000-0000-0000-000000000002/DB_PASSWORD".utf8)
        #expect(throws: SealError(.authenticationFailed, "")) {
            try sealed.open(key: key, version: 3, associatedData: moved)
        }
    }

    @Test func wrongKeyIsRefused() throws {
        let sealed = try SealedValue.seal(Array("hunter2".utf8), key: key, keyVersion: 3, associatedData: aad)
        #expect(throws: SealError(.authenticationFailed, "")) {
            try sealed.open(key: SymmetricKey(size: .bits256), version: 3, associatedData: aad)
        }
    }

    @Test func everyTruncationIsRefused() throws {
        let sealed = try SealedValue.seal(Array("hunter2".utf8), key: key, keyVersion: 3, associatedData: aad)
        for length in 0..<sealed.bytes.count {
            #expect(throws: SealError.self) {
                let short = try SealedValue(bytes: sealed.bytes.prefix(length))
                _ = try short.open(key: key, version: 3, associatedData: aad)
            }
        }
        #expect(throws: SealError(.truncated, "")) { try SealedValue(bytes: sealed.bytes.prefix(SealedValue.minimumLength - 1)) }
    }

    @Test(arguments: [UInt8(0x00), 0x03, 0x7f, 0xff])
    func unknownFormatByteIsRefused(format: UInt8) throws {
        var bytes = try SealedValue.seal(Array("x".utf8), key: key, keyVersion: 1, associatedData: aad).bytes
        bytes[0] = format
        #expect(throws: SealError(.unknownFormat, "")) { try SealedValue(bytes: bytes) }
    }

    @Test func wrongKeyVersionIsRefusedBeforeDecrypting() throws {
        let sealed = try SealedValue.seal(Array("x".utf8), key: key, keyVersion: 1, associatedData: aad)
        #expect(throws: SealError(.unknownKeyVersion, "")) { try sealed.open(key: key, version: 2, associatedData: aad) }
    }

    @Test func onlyAES256KeysAreAccepted() {
        #expect(throws: SealError(.invalidKey, "")) {
            try SealedValue.seal(Array("x".utf8), key: SymmetricKey(size: .bits128), keyVersion: 1, associatedData: aad)
        }
    }

    @Test func associatedDataStringsAreTheContracts() {
        let owner = UUID(uuidString: "6F9619FF-8B86-D011-B42D-00C04FC964FF")!
        #expect(String(decoding: AssociatedData.configValue(ownerID: owner, configID: "dir/app.conf"), as: UTF8.self)
            == "coffer/config/6f9619ff-8b86-d011-b42d-00c04fc964ff/dir/app.conf")
        #expect(String(decoding: AssociatedData.dataKey(purpose: "database", version: 12), as: UTF8.self) == "coffer/dek/database/12")
    }
}

/// Temporary copies of key material are zeroed once a `SymmetricKey` holds them.
@Suite struct SecretMemoryTests {
    @Test func zeroOverwritesEveryByteAndKeepsTheCount() {
        var bytes = [UInt8](repeating: 0xa5, count: 32)
        SecretMemory.zero(&bytes)
        #expect(bytes == [UInt8](repeating: 0, count: 32))
    }

    /// `using` hands the body the bytes unchanged and passes its error on. (That it zeroes
    /// them afterwards is not observable from Swift without reading freed memory; it calls
    /// ``SecretMemory/zero(_:)``, held above.)
    @Test func usingHandsOverTheBytesAndPassesErrorsOn() throws {
        struct Refused: Error {}
        let seen = UnsafeMutableRawBufferPointer.allocate(byteCount: 32, alignment: 1)
        defer { seen.deallocate() }
        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let made = SecretMemory.using(key) { bytes in
            bytes.withUnsafeBytes { seen.copyMemory(from: $0) }
            return SymmetricKey(data: bytes)
        }
        #expect(made.withUnsafeBytes { Array($0) } == Array(seen))
        #expect(throws: Refused.self) { try SecretMemory.using([1, 2, 3]) { _ in throw Refused() } }
    }
}
