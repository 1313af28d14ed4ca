import Foundation

/// AWS credentials: long-term keys, or temporary ones with a session token and expiry.
/// Their description never includes the secret key or token.
public struct AWSCredentials: Sendable, Equatable, CustomStringConvertible {
    public let accessKeyID: String
    public let secretAccessKey: String
    public let sessionToken: String?
    /// When temporary credentials stop working; nil for long-term keys.
    public let expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String {
        "AWSCredentials(accessKeyID: \(accessKeyID), temporary: \(sessionToken != nil))"
    }
}
