import CofferKeys
import CofferTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing

@Suite struct CredentialChainTests {
    static let logger = Logger(label: "test")

    @Test func theChainPicksSourcesInTheSDKOrder() {
        let everything = [
            "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "TOKEN",
            "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/pod-token",
        ]
        #expect(AWSCredentialProvider.source(environment: everything, region: "eu-west-1")
            == .environment(AWSCredentials(accessKeyID: "AKID", secretAccessKey: "SECRET", sessionToken: "TOKEN")))
        var rest = everything
        rest.removeValue(forKey: "AWS_ACCESS_KEY_ID")
        #expect(AWSCredentialProvider.source(environment: rest, region: "eu-west-1")
            == .webIdentity(tokenFile: "/var/run/token", roleARN: "arn:aws:iam::1:role/r", sessionName: "coffer", stsEndpoint: "https://sts.eu-west-1.amazonaws.com"))
        rest.removeValue(forKey: "AWS_ROLE_ARN")
        #expect(AWSCredentialProvider.source(environment: rest, region: "eu-west-1")
            == .container(uri: "http://169.254.170.23/v1/credentials", tokenFile: "/var/run/pod-token", token: nil))
        #expect(AWSCredentialProvider.source(environment: [:], region: "eu-west-1") == .instanceMetadata(endpoint: "http://169.254.169.254"))
        if case .none = AWSCredentialProvider.source(environment: ["AWS_EC2_METADATA_DISABLED": "true"], region: "eu-west-1") {} else {
            Issue.record("disabled metadata should leave no source")
        }
    }

    @Test func webIdentityCredentialsComeFromSTS() async throws {
        let folder = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenFile = folder.appendingPathComponent("token")
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6Y29mZmVyIn0.c2ln".write(to: tokenFile, atomically: true, encoding: .utf8)
        let source = AWSCredentialProvider.source(environment: [
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/coffer",
            "AWS_ENDPOINT_URL_STS": try TestEnvironment.kmsEndpoint(),
        ], region: "us-east-1")
        let provider = AWSCredentialProvider(source: source, logger: Self.logger)
        let credentials = try await provider.credentials()
        #expect(!credentials.accessKeyID.isEmpty)
        #expect(credentials.sessionToken != nil)
        #expect(credentials.expiration != nil)
    }

    @Test func containerAndInstanceMetadataCredentialsAreFetchedAndCached() async throws {
        let hits = AttemptCounter()
        let expiration = ISO8601DateFormatter().string(from: Date().addingTimeInterval(3600))
        let body = #"{"AccessKeyId":"ASIACONTAINER","SecretAccessKey":"container-secret","Token":"container-token","Expiration":"\#(expiration)"}"#
        let router = Router()
        router.get("/v1/credentials") { request, _ -> Response in
            _ = await hits.next("container")
            guard request.headers[.authorization] == "pod-identity-token" else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.put("/latest/api/token") { request, _ -> Response in
            _ = await hits.next("imds-token")
            guard header(request, "X-aws-ec2-metadata-token-ttl-seconds") != nil else { return Response(status: .badRequest) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "imds-session")))
        }
        router.get("/latest/meta-data/iam/security-credentials/") { request, _ -> Response in
            guard header(request, "X-aws-ec2-metadata-token") == "imds-session" else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: "coffer-role")))
        }
        router.get("/latest/meta-data/iam/security-credentials/coffer-role") { request, _ -> Response in
            _ = await hits.next("imds")
            guard header(request, "X-aws-ec2-metadata-token") == "imds-session" else { return Response(status: .unauthorized) }
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string: body.replacingOccurrences(of: "ASIACONTAINER", with: "ASIAINSTANCE"))))
        }
        let folder = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let tokenFile = folder.appendingPathComponent("pod-token")
        try "pod-identity-token\n".write(to: tokenFile, atomically: true, encoding: .utf8)

        try await Application(router: router).test(.live) { client in
            let base = "http://127.0.0.1:\(client.port!)"
            let container = AWSCredentialProvider(source: AWSCredentialProvider.source(environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "\(base)/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile.path,
            ], region: "us-east-1"), logger: Self.logger)
            let first = try await container.credentials()
            #expect(first.accessKeyID == "ASIACONTAINER")
            #expect(first.sessionToken == "container-token")
            _ = try await container.credentials()
            #expect(await hits.count("container") == 1, "cached until close to expiry")

            let instance = AWSCredentialProvider(source: AWSCredentialProvider.source(environment: [
                "AWS_EC2_METADATA_SERVICE_ENDPOINT": base,
            ], region: "us-east-1"), logger: Self.logger)
            #expect(try await instance.credentials().accessKeyID == "ASIAINSTANCE")
            #expect(await hits.count("imds-token") == 1)

            let wrongToken = AWSCredentialProvider(source: .container(uri: "\(base)/v1/credentials", tokenFile: nil, token: "wrong"), logger: Self.logger)
            await #expect(throws: KMSError.self) { try await wrongToken.credentials() }
        }
    }

    @Test func expiringCredentialsAreRefreshed() async throws {
        let hits = AttemptCounter()
        let router = Router()
        router.get("/creds") { _, _ -> Response in
            let count = await hits.next("creds")
            // Expires in 60 s: inside the refresh margin, so each call fetches again.
            let expiration = ISO8601DateFormatter().string(from: Date().addingTimeInterval(60))
            return Response(status: .ok, body: .init(byteBuffer: ByteBuffer(string:
                #"{"AccessKeyId":"ASIA\#(count)","SecretAccessKey":"s","Token":"t","Expiration":"\#(expiration)"}"#)))
        }
        try await Application(router: router).test(.live) { client in
            let provider = AWSCredentialProvider(source: .container(uri: "http://127.0.0.1:\(client.port!)/creds", tokenFile: nil, token: nil), logger: Self.logger)
            let first = try await provider.credentials()
            let second = try await provider.credentials()
            #expect(first.accessKeyID == "ASIA1")
            #expect(second.accessKeyID == "ASIA2")
        }
    }
}
