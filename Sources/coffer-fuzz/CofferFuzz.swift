import CofferFuzzing
import Foundation

#if COFFER_FUZZ
import CLibFuzzer

/// The target COFFER_FUZZ_TARGET names, read once.
let fuzzTarget: FuzzTarget = {
    guard let name = ProcessInfo.processInfo.environment["COFFER_FUZZ_TARGET"], let target = FuzzTarget(rawValue: name) else {
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
        FileHandle.standardError.write(Data("set COFFER_FUZZ_TARGET to one of: \(names)\n".utf8))
        exit(2)
    }
    return target
}()

/// libFuzzer's entry point (its archive's own `main` refers to it).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTarget.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
#endif

/// Plain build: writes a target's seed corpus, or replays inputs (a crash found by the
/// fuzzer reproduces with an ordinary debug build). Built by scripts/fuzz with
/// `-sanitize=fuzzer -DCOFFER_FUZZ`: the libFuzzer driver for the target that
/// COFFER_FUZZ_TARGET names, taking libFuzzer's arguments.
@main
struct CofferFuzz {
    static func main() throws {
        #if COFFER_FUZZ
        _ = fuzzTarget
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data, size) })
        #else
        try seedsOrReplay()
        #endif
    }

    static func seedsOrReplay() throws {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")
        guard arguments.count >= 3, let target = FuzzTarget(rawValue: arguments[1]), ["seeds", "replay"].contains(arguments[0]) else {
            print("""
                usage: coffer-fuzz seeds \(names) DIRECTORY   write the target's seed inputs (one holds a throwaway RSA key)
                       coffer-fuzz replay \(names) FILE...    run the target on each file
                Fuzzing itself: scripts/fuzz (builds this with libFuzzer).
                """)
            exit(arguments.first == "--help" || arguments.first == "-h" ? 0 : 2)
        }
        if arguments[0] == "seeds" {
            let directory = URL(fileURLWithPath: arguments[2], isDirectory: true)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            for (index, seed) in try target.seeds().enumerated() {
                try Data(seed).write(to: directory.appendingPathComponent("seed-\(index)"))
            }
        } else {
            for path in arguments.dropFirst(2) {
                target.run([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
                print("\(path): ok")
            }
        }
    }
}
