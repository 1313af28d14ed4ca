/// The claims of a Coffer access token. Every field is required when verifying.
public struct TokenClaims: Codable, Sendable, Equatable {
    public var iss: String
    public var aud: String
    /// The API key id.
    public var sub: String
    public var iat: Int64
    public var nbf: Int64
    public var exp: Int64
    public var jti: String
    /// The space the API key is bound to.
    public var space: String
    public var role: String
}
