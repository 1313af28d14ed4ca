import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// Creates, checks, lists and revokes API keys. A key's secret is 256 random bits shown
/// once; only its SHA-256 is stored, and checks compare hashes in constant time.
public struct APIKeyService: Sendable {
    /// A key as shown once at creation: the secret is not stored anywhere.
    public struct Created: Sendable {
        public let record: APIKeyRecord
        public let secret: String
    }

    private let database: Database
    private let repository: APIKeyRepository
    private let owners: OwnerRepository

    public init(database: Database, logger: Logger) {
        self.database = database
        self.repository = APIKeyRepository(logger: logger)
        self.owners = OwnerRepository(logger: logger)
    }

    /// Creates a key bound to a space and a role.
    public func create(name: String, space: String, role: Role) async throws -> Created {
        let name = name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, name.count <= 200 else {
            throw CofferError.invalidInput("an API key needs a name of 1 to 200 characters")
        }
        let id = "ak_" + Hex.encode(Self.randomBytes(10))
        let secret = "cfs_" + Base64URL.encode(Self.randomBytes(32))
        let record = APIKeyRecord(id: id, name: name, space: space, role: role.rawValue, secretHash: Self.hash(secret))
        let repository = self.repository
        let owners = self.owners
        try await database.transaction { connection in
            guard try await !owners.spaceSubtree(of: space, on: connection).isEmpty else {
                throw CofferError.unprocessable("space `\(space)` does not exist", code: "unknown_space")
            }
            try await repository.insert(record, on: connection)
        }
        return Created(record: record, secret: secret)
    }

    /// The key with this id if `secret` is its secret and it is not revoked.
    /// - Throws: `unauthorized` otherwise, with one message for every cause.
    public func authenticate(id: String, secret: String) async throws -> APIKeyRecord {
        let repository = self.repository
        let record = try await database.withConnection { try await repository.find(id: id, on: $0) }
        let presented = Self.hash(secret)
        // Compare even when the id is unknown, so timing does not tell ids apart.
        let expected = record?.secretHash ?? [UInt8](repeating: 0, count: presented.count)
        let matches = Self.constantTimeEquals(presented, expected)
        guard let record, matches, record.revokedAt == nil else {
            throw CofferError.unauthorized("the API key id or secret is wrong, or the key is revoked", code: "invalid_credentials")
        }
        return record
    }

    /// All keys, newest first.
    public func list() async throws -> [APIKeyRecord] {
        let repository = self.repository
        return try await database.withConnection { try await repository.list(on: $0) }
    }

    /// Revokes a key; `notFound` if there is no unrevoked key with this id.
    public func revoke(id: String) async throws {
        let repository = self.repository
        guard try await database.withConnection({ try await repository.revoke(id: id, on: $0) }) else {
            throw CofferError.notFound("no active API key has id \(id)")
        }
    }

    static func hash(_ secret: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(secret.utf8)))
    }

    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for index in lhs.indices { difference |= lhs[index] ^ rhs[index] }
        return difference == 0
    }

    static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        bytes.withUnsafeMutableBytes { SystemRandomNumberGenerator.fill($0) }
        return bytes
    }
}

extension SystemRandomNumberGenerator {
    /// Fills a buffer from the system's cryptographically secure generator.
    static func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        var generator = SystemRandomNumberGenerator()
        var offset = 0
        while offset < buffer.count {
            var word = generator.next()
            let count = Swift.min(8, buffer.count - offset)
            withUnsafeBytes(of: &word) { bytes in
                buffer.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: count)
            }
            offset += count
        }
    }
}
