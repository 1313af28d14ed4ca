import CofferCrypto
import CofferStore
import Logging
import Synchronization

/// Authenticated rows: a row whose content decides who may do what carries an HMAC-SHA256
/// of its deciding fields under the `integrity` data key, so a row inserted, edited or
/// copied by someone with only database access does not verify and is never trusted (a
/// login with it is refused, a lookup treats it as absent). Each failure is counted (the
/// metric `coffer_integrity_failures_total`) and logged as an integrity failure.
///
/// What is authenticated, per table, is the message of ``message(table:_:)``: the table's
/// name, a format version and each field length-prefixed, so no two rows' fields can be
/// shuffled into one another's message.
public final class RowIntegrity: Sendable {
    let keyring: Keyring
    let logger: Logger
    private let failures = Mutex<[String: Int]>([:])

    public init(keyring: Keyring, logger: Logger) {
        self.keyring = keyring
        self.logger = logger
    }

    /// The code and key version to store with a row of `table` holding `fields`.
    public func seal(table: String, _ fields: [String]) throws -> (code: [UInt8], version: Int32) {
        let (version, code) = try keyring.authenticationCode(for: Self.message(table: table, fields), purpose: .integrity)
        return (code, Int32(version))
    }

    /// What checking a row's code found.
    public enum Verdict: Sendable, Equatable {
        /// The code was made for exactly these fields.
        case authentic
        /// No code, or one that does not verify: not written by Coffer as it is now.
        case forged
        /// Made by an integrity key version newer than any this process holds (another
        /// replica rotated moments ago): not trusted yet, not counted as tampering.
        case unknownKey
    }

    /// Whether a row of `table` with `fields` carries a code made for exactly these fields.
    /// A forged row is counted and logged with `row` (an id, never a secret).
    public func verify(table: String, row: String, _ fields: [String], code: [UInt8]?, version: Int32?) -> Bool {
        check(table: table, row: row, fields, code: code, version: version) == .authentic
    }

    public func check(table: String, row: String, _ fields: [String], code: [UInt8]?, version: Int32?) -> Verdict {
        if let code, let version, let keyVersion = UInt32(exactly: version) {
            if keyring.isValidAuthenticationCode(code, for: Self.message(table: table, fields), purpose: .integrity, version: keyVersion) {
                return .authentic
            }
            if let newest = keyring.versions(of: .integrity).max(), keyVersion > newest {
                logger.info("a row's code is under an integrity key version not loaded yet", metadata: ["table": "\(table)", "row": "\(row)"])
                return .unknownKey
            }
        }
        failures.withLock { $0[table, default: 0] += 1 }
        logger.error("integrity failure: a row does not carry a valid authentication code and is not trusted", metadata: [
            "table": "\(table)", "row": "\(row)", "reason": "\(code == nil ? "no code" : "code does not verify")",
        ])
        return .forged
    }

    /// Rows refused so far by table, for metrics.
    public var failureCounts: [String: Int] { failures.withLock { $0 } }

    static func message(table: String, _ fields: [String]) -> [UInt8] {
        var bytes = Array("coffer/row/\(table)/v1".utf8)
        for field in fields {
            let utf8 = Array(field.utf8)
            let count = UInt32(utf8.count)
            bytes += [UInt8(count >> 24), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
            bytes += utf8
        }
        return bytes
    }
}

/// Giving rows new codes, in the caller's transaction.
extension RowIntegrity {
    /// Confirms, in the writer's transaction, that the integrity key version that coded a
    /// row is still the active one, holding a share lock on it until commit: a replica that
    /// has not loaded a rotation yet reloads and codes again (``StaleKeyring``), so no row is
    /// ever written under a version a destruction job has already moved rows off.
    func confirmActive(_ version: Int32?, on session: StoreSession) async throws {
        guard let version, try await KeyLifecycleRepository(logger: logger).isActiveDataKey(
            purpose: DataKeyPurpose.integrity.rawValue, version: version, on: session
        ) else { throw StaleKeyring() }
    }

    /// Gives every authenticated row whose code `integrity` key version `version` made a new
    /// code under the active version, and returns how many. Only a row whose code verifies is
    /// vouched for again; one that does not keeps its bad code and stays refused. With
    /// `version` nil it gives a first code to every row that has none: only the `coffer
    /// migrate` that creates the integrity key does that, once.
    @discardableResult
    func authenticateRows(madeBy version: Int32?, on session: StoreSession) async throws -> Int {
        let apiKeys = APIKeyRepository(logger: logger)
        let kmsKeys = KMSKeyRepository(logger: logger)
        var count = 0
        // A new code must come from another version than the one being moved off.
        func recoded(_ code: [UInt8]?, _ codeVersion: Int32?) throws -> (code: [UInt8], version: Int32) {
            guard let code, let codeVersion, codeVersion != version else { throw StaleKeyring() }
            return (code, codeVersion)
        }
        for key in try await apiKeys.keysAuthenticated(byVersion: version, on: session) where version == nil || verify(key) {
            let sealed = try seal(key)
            let (mac, macVersion) = try recoded(sealed.mac, sealed.macVersion)
            try await apiKeys.setAuthenticationCode(id: key.id, mac: mac, macVersion: macVersion, on: session)
            count += 1
        }
        for key in try await kmsKeys.keysAuthenticated(byVersion: version, on: session) where version == nil || verify(key) {
            let sealed = try seal(key)
            _ = try recoded(sealed.mac, sealed.macVersion)
            try await kmsKeys.update(sealed, on: session)
            count += 1
        }
        // Spaces and attachments get their first codes from their own migration (0010).
        if let version { count += try await authenticateTreeRows(madeBy: version, on: session) }
        return count
    }
}

/// The deciding fields of an API key: its id, space, role, secret hash and whether it is
/// revoked. (Its name and times decide nothing.)
extension RowIntegrity {
    static let apiKeys = "api_keys"

    static func apiKeyFields(id: String, space: String, role: String, secretHash: [UInt8], revoked: Bool) -> [String] {
        [id, space, role, Hex.encode(secretHash), revoked ? "revoked" : "active"]
    }

    func seal(_ key: APIKeyRecord) throws -> APIKeyRecord {
        var key = key
        (key.mac, key.macVersion) = try seal(
            table: Self.apiKeys, Self.apiKeyFields(id: key.id, space: key.space, role: key.role, secretHash: key.secretHash, revoked: key.revokedAt != nil)
        )
        return key
    }

    func verify(_ key: APIKeyRecord) -> Bool {
        check(key) == .authentic
    }

    func check(_ key: APIKeyRecord) -> Verdict {
        check(table: Self.apiKeys, row: key.id,
              Self.apiKeyFields(id: key.id, space: key.space, role: key.role, secretHash: key.secretHash, revoked: key.revokedAt != nil),
              code: key.mac, version: key.macVersion)
    }
}

/// The deciding fields of a named KMS key: which key it is (uuid, name), where it lives
/// (space), what it is (algorithm), which versions encrypt and decrypt, and whether it
/// works. (Its description and times decide nothing.)
extension RowIntegrity {
    static let kmsKeys = "kms_keys"

    static func kmsKeyFields(_ key: KMSKeyRecord) -> [String] {
        [key.uuid.uuidString, key.name, key.space, key.algorithm, String(key.latestVersion), String(key.minDecryptionVersion),
         key.enabled ? "enabled" : "disabled"]
    }

    func seal(_ key: KMSKeyRecord) throws -> KMSKeyRecord {
        var key = key
        (key.mac, key.macVersion) = try seal(table: Self.kmsKeys, Self.kmsKeyFields(key))
        return key
    }

    func verify(_ key: KMSKeyRecord) -> Bool {
        verify(table: Self.kmsKeys, row: key.name, Self.kmsKeyFields(key), code: key.mac, version: key.macVersion)
    }
}
