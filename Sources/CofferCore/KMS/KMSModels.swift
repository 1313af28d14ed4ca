import Crypto

/// The algorithms of named KMS keys.
public enum KMSAlgorithm: String, Sendable, CaseIterable {
    case aes256GCM = "aes-256-gcm"
    case aes128GCM = "aes-128-gcm"

    var keySize: SymmetricKeySize { self == .aes256GCM ? .bits256 : .bits128 }
}

/// The operations of Coffer's KMS API.
public enum KMSOperation: String, Sendable, CaseIterable {
    case encrypt, decrypt, rewrap, datakey
}

/// What a caller sends to create a named key.
public struct KMSKeyInput: Sendable {
    public var name: String
    public var algorithm: String
    public var description: String
    /// Nil: the caller's own space.
    public var space: String?

    public init(name: String, algorithm: String = KMSAlgorithm.aes256GCM.rawValue, description: String = "", space: String? = nil) {
        self.name = name
        self.algorithm = algorithm
        self.description = description
        self.space = space
    }
}

/// A change to a named key; nil fields stay as they are.
public struct KMSKeyPatch: Sendable {
    public var description: String?
    public var minDecryptionVersion: Int?
    public var enabled: Bool?

    public init(description: String? = nil, minDecryptionVersion: Int? = nil, enabled: Bool? = nil) {
        self.description = description
        self.minDecryptionVersion = minDecryptionVersion
        self.enabled = enabled
    }
}

/// One item of an operation, as the caller sent it (base64 and ciphertext text).
public struct KMSItem: Sendable {
    public var plaintext: String?
    public var ciphertext: String?
    public var context: String?

    public init(plaintext: String? = nil, ciphertext: String? = nil, context: String? = nil) {
        self.plaintext = plaintext
        self.ciphertext = ciphertext
        self.context = context
    }
}

/// What one item came to: a ciphertext and/or a plaintext under a key version, or an error.
public struct KMSItemOutcome: Sendable {
    public var ciphertext: String?
    public var plaintext: [UInt8]?
    public var keyVersion: Int?
    public var error: CofferError?

    static func failed(_ error: CofferError) -> KMSItemOutcome { KMSItemOutcome(error: error) }
}
