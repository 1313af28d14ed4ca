#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wiping temporary copies of key material. `SymmetricKey` (swift-crypto's `SecureBytes`)
/// zeroes its own storage when freed; a raw key in a `[UInt8]` (what a root key unwraps,
/// what a sealed data key opens to) does not, so the code that holds one wipes it as soon
/// as the `SymmetricKey` is made. Swift gives no such guarantee for copies it makes on its
/// own (a `String`, a `Data` a library returns), which this cannot reach.
public enum SecretMemory {
    /// Overwrites `bytes` with zeros in a way the optimiser may not drop, keeping its count.
    /// The array must not share its storage (a copy would be wiped instead); an array just
    /// returned by a function or made by the caller does not.
    public static func zero(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else { return }
            #if canImport(Darwin)
            _ = memset_s(base, buffer.count, 0, buffer.count)
            #else
            explicit_bzero(base, buffer.count)
            #endif
        }
    }

    /// Passes `bytes` to `body`, then zeroes them, whether `body` returns or throws.
    public static func using<Result>(_ bytes: consuming [UInt8], _ body: ([UInt8]) throws -> Result) rethrows -> Result {
        // `consume`, so no second reference keeps the storage shared and the zeroing is not
        // spent on a copy-on-write copy.
        var bytes = consume bytes
        defer { zero(&bytes) }
        return try body(bytes)
    }
}
