import CofferKeys
import Foundation
import Testing

/// Known answers from AWS's Signature Version 4 test suite (aws-sig-v4-test-suite:
/// AKIDEXAMPLE, us-east-1, service "service", 20150830T123600Z). The local KMS server
/// checks no signature, so these are the proof that the signer is right.
@Suite struct SigV4SignerTests {
    static let credentials = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    static let sessionToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
    static let date = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z
    let signer = SigV4Signer(service: "service", region: "us-east-1")

    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let request: SigV4Signer.Request
        let canonical: String
        let stringToSign: String
        let authorization: String
        var testDescription: String { name }
    }

    static let host = ("Host", "example.amazonaws.com")
    static let amzDate = ("X-Amz-Date", "20150830T123600Z")
    static let emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    static let scope = "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
    static let credential = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "

    static let cases: [Case] = [
        Case(
            name: "get-vanilla",
            request: .init(method: "GET", path: "/", headers: [host, amzDate]),
            canonical: "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            authorization: credential + "SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        ),
        Case(
            name: "get-vanilla-query-order-key-case",
            request: .init(method: "GET", path: "/", query: [("Param2", "value2"), ("Param1", "value1")], headers: [host, amzDate]),
            canonical: "GET\n/\nParam1=value1&Param2=value2\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
            authorization: credential + "SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"
        ),
        Case(
            name: "get-header-value-trim",
            request: .init(method: "GET", path: "/", headers: [host, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\""), amzDate]),
            canonical: "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\nmy-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\nhost;my-header1;my-header2;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
            authorization: credential + "SignedHeaders=host;my-header1;my-header2;x-amz-date, Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"
        ),
        Case(
            name: "post-vanilla",
            request: .init(method: "POST", path: "/", headers: [host, amzDate]),
            canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
            authorization: credential + "SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"
        ),
        // The suite's published .creq of this case also lists content-length, but its .sts
        // and .authz sign only these three headers; this is the consistent form.
        Case(
            name: "post-x-www-form-urlencoded",
            request: .init(method: "POST", path: "/", headers: [("Content-Type", "application/x-www-form-urlencoded"), host, amzDate], body: Array("Param1=value1".utf8)),
            canonical: "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            stringToSign: scope + "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            authorization: credential + "SignedHeaders=content-type;host;x-amz-date, Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"
        ),
        Case(
            name: "post-sts-header-before",
            request: .init(method: "POST", path: "/", headers: [host, amzDate, ("X-Amz-Security-Token", sessionToken)]),
            canonical: "POST\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\nx-amz-security-token:\(sessionToken)\n\nhost;x-amz-date;x-amz-security-token\n\(emptyHash)",
            stringToSign: scope + "c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            authorization: credential + "SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"
        ),
        Case(
            name: "get-vanilla-utf8-query",
            request: .init(method: "GET", path: "/", query: [("\u{1234}", "bar")], headers: [host, amzDate]),
            canonical: "GET\n/\n%E1%88%B4=bar\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
            authorization: credential + "SignedHeaders=host;x-amz-date, Signature=2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"
        ),
        Case(
            name: "get-vanilla-query-unreserved",
            request: .init(method: "GET", path: "/", query: [(unreserved, unreserved)], headers: [host, amzDate]),
            canonical: "GET\n/\n\(unreserved)=\(unreserved)\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(emptyHash)",
            stringToSign: scope + "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
            authorization: credential + "SignedHeaders=host;x-amz-date, Signature=9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"
        ),
    ]
    static let unreserved = "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

    @Test(arguments: cases)
    func matchesTheAWSTestSuite(testCase: Case) {
        let (canonical, _) = signer.canonicalRequest(testCase.request)
        #expect(canonical == testCase.canonical)
        #expect(signer.stringToSign(canonicalRequest: canonical, amzDate: "20150830T123600Z") == testCase.stringToSign)
        #expect(signer.authorization(for: testCase.request, credentials: Self.credentials, amzDate: "20150830T123600Z") == testCase.authorization)
    }

    @Test func signAddsDateTokenAndAuthorization() {
        let unsigned = SigV4Signer.Request(method: "POST", path: "/", headers: [Self.host])
        let temporary = AWSCredentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: Self.credentials.secretAccessKey, sessionToken: Self.sessionToken)
        let signed = signer.sign(unsigned, credentials: temporary, date: Self.date)
        let headers = Dictionary(signed.headers, uniquingKeysWith: { $1 })
        #expect(headers["X-Amz-Date"] == "20150830T123600Z")
        #expect(headers["X-Amz-Security-Token"] == Self.sessionToken)
        #expect(headers["Authorization"] == Self.cases.first { $0.name == "post-sts-header-before" }!.authorization)
        #expect(!temporary.description.contains(Self.sessionToken))
        #expect(!temporary.description.contains(temporary.secretAccessKey))
    }

    @Test func amzDateIsUTC() {
        #expect(SigV4Signer.amzDate(Self.date) == "20150830T123600Z")
    }
}
