import CofferCrypto
import Crypto
import Foundation

/// AWS Signature Version 4 for a request with its whole body in memory (the KMS, STS
/// and IMDS calls Coffer makes). Pure: the clock and credentials are inputs.
public struct SigV4Signer: Sendable {
    public let service: String
    public let region: String

    public init(service: String, region: String) {
        self.service = service
        self.region = region
    }

    /// A request as signed: method, path, query items in any order, headers in any order.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], body: [UInt8] = []) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.body = body
        }
    }

    /// Adds `X-Amz-Date`, `X-Amz-Security-Token` (with a session token, signed) and
    /// `Authorization` to the request's headers and returns it.
    public func sign(_ request: Request, credentials: AWSCredentials, date: Date) -> Request {
        var signed = request
        let amzDate = Self.amzDate(date)
        signed.headers.removeAll { ["x-amz-date", "authorization", "x-amz-security-token"].contains($0.0.lowercased()) }
        signed.headers.append(("X-Amz-Date", amzDate))
        if let token = credentials.sessionToken { signed.headers.append(("X-Amz-Security-Token", token)) }
        signed.headers.append(("Authorization", authorization(for: signed, credentials: credentials, amzDate: amzDate)))
        return signed
    }

    /// The `Authorization` header value for a request that already carries `X-Amz-Date`
    /// (and the session token header, if any).
    public func authorization(for request: Request, credentials: AWSCredentials, amzDate: String) -> String {
        let (canonical, signedHeaders) = canonicalRequest(request)
        let scope = credentialScope(amzDate: amzDate)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: amzDate)
        let signature = Self.hmac(signingKey(secret: credentials.secretAccessKey, day: String(amzDate.prefix(8))), Array(toSign.utf8))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(Hex.encode(signature))"
    }

    /// The canonical request and the signed header list.
    public func canonicalRequest(_ request: Request) -> (String, String) {
        let path = Self.canonicalPath(request.path)
        let encoded: [(name: String, value: String)] = request.query.map { (Self.uriEncode($0.0), Self.uriEncode($0.1)) }
        let sorted = encoded.sorted { (lhs, rhs) -> Bool in
            lhs.name == rhs.name ? lhs.value < rhs.value : lhs.name < rhs.name
        }
        let query = sorted.map { pair -> String in pair.name + "=" + pair.value }.joined(separator: "&")
        var headers: [String: [String]] = [:]
        for (name, value) in request.headers where name.lowercased() != "authorization" {
            headers[name.lowercased(), default: []].append(Self.trimHeaderValue(value))
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let payloadHash = Hex.encode(SHA256.hash(data: request.body))
        return ([request.method, path, query, canonicalHeaders, signedHeaders, payloadHash].joined(separator: "\n"), signedHeaders)
    }

    /// The string to sign for a canonical request.
    public func stringToSign(canonicalRequest: String, amzDate: String) -> String {
        let hash = Hex.encode(SHA256.hash(data: Array(canonicalRequest.utf8)))
        return "AWS4-HMAC-SHA256\n\(amzDate)\n\(credentialScope(amzDate: amzDate))\n\(hash)"
    }

    func credentialScope(amzDate: String) -> String {
        "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
    }

    func signingKey(secret: String, day: String) -> [UInt8] {
        let date = Self.hmac(Array("AWS4\(secret)".utf8), Array(day.utf8))
        let region = Self.hmac(date, Array(self.region.utf8))
        let service = Self.hmac(region, Array(self.service.utf8))
        return Self.hmac(service, Array("aws4_request".utf8))
    }

    /// `YYYYMMDDTHHMMSSZ` in UTC.
    public static func amzDate(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }

    /// RFC 3986 percent-encoding of everything but the unreserved characters.
    public static func uriEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// Normalises `.` and `..` segments and encodes each segment once.
    static func canonicalPath(_ path: String) -> String {
        var segments: [String] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(uriEncode(String(segment).removingPercentEncoding ?? String(segment)))
            }
        }
        let joined = "/" + segments.joined(separator: "/")
        return path.hasSuffix("/") && !segments.isEmpty ? joined + "/" : joined
    }

    /// Trims a header value and folds runs of white space into one space. Works on
    /// scalars: "\r\n" is one Swift Character, equal to neither "\r" nor "\n", and was
    /// kept, adding a line to the canonical request (found by scripts/fuzz).
    static func trimHeaderValue(_ value: String) -> String {
        value.unicodeScalars.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            .map { String(String.UnicodeScalarView($0)) }.joined(separator: " ")
    }

    static func hmac(_ key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key)))
    }
}
