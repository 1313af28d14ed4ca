import CofferCore
import CofferCrypto
import CofferKeys
import Crypto
import Foundation

/// Coverage-guided fuzz targets for the parsers that read untrusted bytes: the sealed
/// value format, the JWT verifier, the RSA PEM loader, the SigV4 canonicaliser and the
/// ciphertext text of the KMS API.
///
/// Each target takes arbitrary bytes and traps when one of its invariants breaks; a thrown
/// error is the parser refusing the input, which is fine. `scripts/fuzz` runs them under
/// libFuzzer (`Sources/coffer-fuzz`); `CofferFuzzingTests` replays their seeds, random
/// mutations and every crash ever found (`Tests/CofferFuzzingTests/Regressions`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    case sealed, jwt, pem, sigv4, kms

    /// Runs the target on one input; traps on a broken invariant.
    public func run(_ data: [UInt8]) {
        switch self {
        case .sealed: SealedTarget.run(data)
        case .jwt: JWTTarget.run(data)
        case .pem: PEMTarget.run(data)
        case .sigv4: SigV4Target.run(data)
        case .kms: KMSCiphertextTarget.run(data)
        }
    }

    /// Inputs that reach deep into the target, to start a corpus from. The PEM seeds hold
    /// a freshly generated throwaway key: write them to a temporary folder only.
    public func seeds() throws -> [[UInt8]] {
        switch self {
        case .sealed: try SealedTarget.seeds()
        case .jwt: JWTTarget.seeds()
        case .pem: try PEMTarget.seeds()
        case .sigv4: SigV4Target.seeds()
        case .kms: try KMSCiphertextTarget.seeds()
        }
    }
}

/// Traps with `message` (which names the invariant, never the input) when `condition` fails.
func invariant(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fatalError("fuzz invariant broken: \(message())", file: file, line: line) }
}

// MARK: - sealed values

enum SealedTarget {
    static let key = SymmetricKey(data: SHA256.hash(data: Array("coffer fuzz sealed key".utf8)))
    static let place = Array("stacks/fuzz/config/VALUE".utf8)

    static func run(_ data: [UInt8]) {
        guard let value = try? SealedValue(bytes: data) else {
            invariant(data.count < SealedValue.minimumLength || !SealedValue.knownFormats.contains(data[0]), "refused a well-formed header")
            return
        }
        invariant(value.bytes == data, "parsing changed the bytes")
        let version = UInt32(data[1]) << 24 | UInt32(data[2]) << 16 | UInt32(data[3]) << 8 | UInt32(data[4])
        invariant(value.keyVersion == version, "read the wrong key version")
        invariant((try? value.open(key: key, version: version &+ 1, associatedData: place)) == nil, "opened under another version")
        invariant((try? value.open(key: key, version: version, associatedData: place + [0])) == nil, "opened in another place")
        guard let plaintext = try? value.open(key: key, version: version, associatedData: place) else { return }
        // GCM is deterministic for a key and nonce: anything that opens must be exactly
        // what sealing its plaintext with that nonce gives, or the format is malleable.
        let nonce = try! AES.GCM.Nonce(data: data[5..<SealedValue.headerLength])
        let box = try! AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: place)
        invariant(Array(box.ciphertext) + Array(box.tag) == Array(data[SealedValue.headerLength...]), "an altered value opened")
    }

    static func seeds() throws -> [[UInt8]] {
        try [(0, 1), (1, 7), (32, 0xffff_ffff), (300, 2)].map { length, version in
            try SealedValue.seal([UInt8](repeating: 0x61, count: length), key: key, keyVersion: UInt32(version), associatedData: place).bytes
        }
    }
}

// MARK: - KMS ciphertexts

/// The `coffer:v<version>:<base64>` text an application hands back to `decrypt`: only the
/// exact text `encrypt` produced parses, and nothing but an unaltered ciphertext opens.
enum KMSCiphertextTarget {
    static let key = SymmetricKey(data: SHA256.hash(data: Array("coffer fuzz kms key".utf8)))
    static let keyID = UUID(uuidString: "00000000-0000-4000-8000-00000000f022")!

    static func associatedData(_ version: UInt32) -> [UInt8] {
        AssociatedData.kmsCiphertext(keyID: keyID, version: version, context: Array("tenant=fuzz".utf8))
    }

    static func run(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        guard let ciphertext = KMSCiphertext(parsing: text) else { return }
        invariant(Array(ciphertext.text.utf8) == data, "a text other than the canonical one parsed")
        invariant(KMSCiphertext(parsing: ciphertext.text) == ciphertext, "the canonical text does not parse back")
        // The service opens with the associated data of the version the text names (and
        // that version's key); a payload relabelled with another version must not open.
        // (This target uses one key for every version, so only the associated data binds it.)
        let version = ciphertext.version
        guard let plaintext = try? ciphertext.open(key: key, associatedData: associatedData(version)) else { return }
        let nonce = try! AES.GCM.Nonce(data: ciphertext.payload[0..<12])
        let box = try! AES.GCM.seal(plaintext, using: key, nonce: nonce, authenticating: associatedData(version))
        invariant(Array(box.ciphertext) + Array(box.tag) == Array(ciphertext.payload[12...]), "an altered ciphertext opened")
    }

    static func seeds() throws -> [[UInt8]] {
        try [(0, 1), (5, 2), (64, 17), (300, 4_294_967_295)].map { length, version in
            let sealed = try KMSCiphertext.seal([UInt8](repeating: 0x62, count: length), key: key, version: UInt32(version),
                                                associatedData: associatedData(UInt32(version)))
            return Array(sealed.text.utf8)
        }
    }
}

// MARK: - JWT

/// A token signed at start-up with a throwaway key, and the verifier that accepts it.
/// An input with an odd first byte is a list of edits to that token (3 bytes each:
/// position, new byte), so the fuzzer explores near-valid tokens; any other input is
/// the token itself. Nothing but the untouched token may verify.
enum JWTTarget {
    struct Context: Sendable {
        let service: TokenService
        let token: String
        let now: Date
    }

    static let context: Context = {
        let key = try! RSAPrivateKey.generate(bits: 2048)
        let service = TokenService(signer: RSARootKey(privateKey: key), issuer: "coffer", audience: "coffer-api", lifetime: 3600)
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let issued = Int64(now.timeIntervalSince1970) - 10
        let claims: [String: Any] = ["iss": "coffer", "aud": "coffer-api", "sub": "ak_fuzz", "iat": issued, "nbf": issued,
                                     "exp": issued + 3600, "jti": "fuzz", "space": "root", "role": "admin"]
        let payload = try! JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys])
        let header = JWSHeader(alg: "RS256", typ: "JWT", kid: key.publicKey.jwkThumbprint)
        let input = try! CompactJWS.signingInput(header: header, payload: payload)
        let token = CompactJWS.serialize(signingInput: input, signature: try! key.signRS256(Array(input.utf8)))
        precondition((try? service.verify(token, now: now)) != nil, "the fuzz token does not verify")
        return Context(service: service, token: token, now: now)
    }()

    static func run(_ data: [UInt8]) {
        let context = Self.context
        let token: String
        if let first = data.first, first & 1 == 1 {
            var bytes = Array(context.token.utf8)
            var edits = data.dropFirst()
            while edits.count >= 3 {
                let position = (Int(edits[edits.startIndex]) << 8 | Int(edits[edits.startIndex + 1])) % (bytes.count + 1)
                let byte = edits[edits.startIndex + 2]
                if position == bytes.count { bytes.append(byte) } else { bytes[position] = byte }
                edits = edits.dropFirst(3)
            }
            if let cut = edits.first { bytes.removeLast(min(Int(cut) % 4, bytes.count)) }
            token = String(decoding: bytes, as: UTF8.self)
        } else {
            token = String(decoding: data.dropFirst(), as: UTF8.self)
        }
        if let jws = try? CompactJWS(parsing: token) {
            // One encoding per token: a part that decodes must be the encoding of what it decodes to.
            let parts = token.split(separator: ".", omittingEmptySubsequences: false)
            invariant(Base64URL.encode(jws.signature) == parts[2], "a non-canonical signature encoding parsed")
            invariant(Base64URL.encode(jws.payload) == parts[1], "a non-canonical payload encoding parsed")
        }
        let verified = (try? context.service.verify(token, now: context.now)) != nil
        invariant(!verified || token == context.token, "a token other than the one signed verified")
    }

    static func seeds() -> [[UInt8]] {
        [[0] + Array(context.token.utf8), [1], [1, 0, 5, 0x41], [1, 0xff, 0xff, 0x2e], [0] + Array("a.b.c".utf8)]
    }
}

// MARK: - PEM loader

enum PEMTarget {
    static func run(_ data: [UInt8]) {
        let text = String(decoding: data, as: UTF8.self)
        if let key = try? RSAPrivateKey(pem: text) {
            invariant(key.keySizeInBits >= RSAPrivateKey.minimumBits, "accepted a key below the minimum size")
        }
        if let key = try? RSAPrivateKey(base64PEM: text) {
            invariant(key.keySizeInBits >= RSAPrivateKey.minimumBits, "accepted a key below the minimum size")
        }
    }

    static func seeds() throws -> [[UInt8]] {
        let pem = try RSAPrivateKey.generate(bits: 2048).pkcs8PEM
        let lines = pem.split(separator: "\n")
        return [
            Array(pem.utf8),
            Array(Data(pem.utf8).base64EncodedString().utf8),
            Array(lines.prefix(lines.count / 2).joined(separator: "\n").utf8),
            Array("-----BEGIN RSA PRIVATE KEY-----\nMIIBOgIBAAJBAK\n-----END RSA PRIVATE KEY-----\n".utf8),
            Array("-----BEGIN EC PRIVATE KEY-----\n-----END EC PRIVATE KEY-----\n".utf8),
        ]
    }
}

// MARK: - SigV4 canonicaliser

/// Input: NUL-separated fields: method, path, then name/value pairs, each a query item
/// when its name starts with an even byte and a header otherwise; an odd field out is
/// the body.
enum SigV4Target {
    static let signer = SigV4Signer(service: "kms", region: "eu-west-1")
    static let credentials = AWSCredentials(accessKeyID: "AKIDFUZZ", secretAccessKey: "fuzz-secret", sessionToken: nil)
    static let unreserved = Set(Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~".utf8))
    static let hexDigits = Set(Array("0123456789ABCDEF".utf8))
    static let tokenCharacters = Set(Array("!#$%&'*+-.^_`|~ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8))

    static func run(_ data: [UInt8]) {
        let fields = data.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 2 else { return }
        let method = String(fields[0].unicodeScalars.filter { ("A"..."Z").contains($0) })
        var query: [(String, String)] = []
        var headers: [(String, String)] = []
        var index = 2
        while index + 1 < fields.count {
            let (name, value) = (fields[index], fields[index + 1])
            if name.utf8.first.map({ $0 & 1 == 0 }) ?? true {
                query.append((name, value))
            } else {
                // Header names are HTTP tokens; Coffer only ever signs its own.
                let token = String(decoding: name.utf8.filter { tokenCharacters.contains($0) }, as: UTF8.self)
                headers.append((token.isEmpty ? "x-fuzz" : token, value))
            }
            index += 2
        }
        let body = index < fields.count ? Array(fields[index].utf8) : []
        let request = SigV4Signer.Request(method: method.isEmpty ? "POST" : method, path: fields[1], query: query, headers: headers, body: body)
        let (canonical, signedHeaders) = signer.canonicalRequest(request)
        let names = Set(headers.map { $0.0.lowercased() }).subtracting(["authorization"])
        // The canonical request's lines are its structure: a value that adds a line could
        // make two different requests sign alike.
        invariant(canonical.utf8.filter { $0 == 0x0a }.count == 5 + names.count, "a header value changed the canonical request's lines")
        invariant(signedHeaders == names.sorted().joined(separator: ";"), "the signed header list is not the sorted names")
        let lines = canonical.split(separator: "\n", omittingEmptySubsequences: false)
        invariant(isEncoded(lines[1].utf8, allowing: [UInt8(ascii: "/")]) && lines[1].hasPrefix("/"), "the canonical path is not encoded")
        invariant(isEncoded(lines[2].utf8, allowing: [UInt8(ascii: "="), UInt8(ascii: "&")]), "the canonical query is not encoded")
        for (name, value) in query {
            invariant(SigV4Signer.uriEncode(name).removingPercentEncoding == name, "URI encoding does not round-trip")
            invariant(SigV4Signer.uriEncode(value).removingPercentEncoding == value, "URI encoding does not round-trip")
        }
        let signed = signer.sign(request, credentials: credentials, date: Date(timeIntervalSince1970: 1_900_000_000))
        invariant(signed.headers.last?.0 == "Authorization", "the signed request has no Authorization header")
    }

    static func isEncoded(_ bytes: some Collection<UInt8>, allowing extra: Set<UInt8>) -> Bool {
        var bytes = bytes[...]
        while let byte = bytes.popFirst() {
            if unreserved.contains(byte) || extra.contains(byte) { continue }
            guard byte == UInt8(ascii: "%"), let high = bytes.popFirst(), let low = bytes.popFirst(),
                  hexDigits.contains(high), hexDigits.contains(low) else { return false }
        }
        return true
    }

    static func seeds() -> [[UInt8]] {
        func join(_ fields: [String]) -> [UInt8] { Array(fields.joined(separator: "\u{0}").utf8) }
        return [
            join(["POST", "/", "\u{1}Content-Type", "application/x-amz-json-1.1", "\u{1}X-Amz-Target", "TrentService.Encrypt", "{}"]),
            join(["GET", "/a/./b/../c%20d/", "Action", "GetCallerIdentity", "Version", "2011-06-15"]),
            join(["GET", "/é", "q", "a b+c", "\u{1}Host", "  kms.eu-west-1.amazonaws.com  \t x "]),
        ]
    }
}
