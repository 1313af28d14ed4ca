@testable import CofferFuzzing
import Foundation
import Testing

/// Every fuzz target on its seeds, on every crash the fuzzer ever found
/// (`Regressions/<target>/`, one file per input, kept forever), and on deterministic random
/// mutations of the seeds. A broken invariant traps, failing the run.
@Suite struct FuzzRegressionTests {
    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Regressions")

    @Test(arguments: FuzzTarget.allCases)
    func seedsAndRegressions(_ target: FuzzTarget) throws {
        let seeds = try target.seeds()
        #expect(!seeds.isEmpty)
        for seed in seeds { target.run(seed) }
        let folder = Self.regressions.appendingPathComponent(target.rawValue)
        let files = (try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? []
        for file in files { target.run([UInt8](try Data(contentsOf: file))) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func mutationsOfTheSeeds(_ target: FuzzTarget) throws {
        var generator = SplitMix64(seed: 0xC0FFE5)
        let seeds = try target.seeds()
        for round in 0..<(target == .pem ? 200 : 3000) {
            var input = seeds[round % seeds.count]
            for _ in 0...Int(generator.next() % 4) {
                let position = input.isEmpty ? 0 : Int(generator.next() % UInt64(input.count))
                switch generator.next() % 4 {
                case 0 where !input.isEmpty: input[position] = UInt8(truncatingIfNeeded: generator.next())
                case 1: input.insert(UInt8(truncatingIfNeeded: generator.next()), at: position)
                case 2 where !input.isEmpty: input.remove(at: position)
                default: input = Array(input.prefix(position))
                }
            }
            target.run(input)
        }
    }

    /// The invariants can fail: a token edited in its last character still verifies if the
    /// base64url decoder ignores the unused low bits (found by the fuzzer, fixed).
    @Test func aSignatureWithNonZeroPaddingBitsIsRefused() {
        let token = JWTTarget.context.token
        var bytes = Array(token.utf8)
        let last = bytes.removeLast()
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
        let index = alphabet.firstIndex(of: last)!
        bytes.append(alphabet[index ^ 1])
        let edited = String(decoding: bytes, as: UTF8.self)
        #expect((try? JWTTarget.context.service.verify(edited, now: JWTTarget.context.now)) == nil)
    }
}

/// A small deterministic generator, so a failing mutation run repeats exactly.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
