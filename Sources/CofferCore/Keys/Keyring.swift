import CofferCrypto
import Crypto
import Synchronization

/// What a data key protects; each purpose has its own versions.
public enum DataKeyPurpose: String, Sendable, CaseIterable {
    case database
    case audit
    /// Authenticates the rows that decide who may do what (HMAC-SHA256; see ``RowIntegrity``).
    case integrity
}

/// The unwrapped data keys held in memory by a running service: seals new values under
/// the active version of a purpose and opens values of any version it holds.
public final class Keyring: Sendable {
    /// One unwrapped data key.
    public struct DataKey: Sendable {
        public let purpose: DataKeyPurpose
        public let version: UInt32
        public let key: SymmetricKey
        public let isActive: Bool

        public init(purpose: DataKeyPurpose, version: UInt32, key: SymmetricKey, isActive: Bool) {
            self.purpose = purpose
            self.version = version
            self.key = key
            self.isActive = isActive
        }
    }

    private struct State {
        var keys: [DataKeyPurpose: [UInt32: SymmetricKey]] = [:]
        var active: [DataKeyPurpose: UInt32] = [:]
        var keyEncryptionKeys: [UInt32: SymmetricKey] = [:]
        var activeKEK: UInt32?
        var acceptsFormatV1 = true
    }

    private let state: Mutex<State>
    private let sealed = Atomic<UInt64>(0)
    private let opened = Atomic<UInt64>(0)
    private let refusedValues = Atomic<UInt64>(0)

    /// Values sealed and opened by this keyring since start (for metrics).
    public var counts: (sealed: UInt64, opened: UInt64) { (sealed.load(ordering: .relaxed), opened.load(ordering: .relaxed)) }

    /// Builds a keyring from unwrapped data keys and the unwrapped key-encryption keys that
    /// seal named KMS keys (`activeKEK` seals new ones).
    /// `acceptsFormatV1` is false once `coffer keys reseal` has sealed every config value
    /// in format 2: a format 1 value found later was put back from an earlier copy.
    public init(dataKeys: [DataKey], keyEncryptionKeys: [UInt32: SymmetricKey] = [:], activeKEK: UInt32? = nil, acceptsFormatV1: Bool = true) {
        var state = State()
        state.keyEncryptionKeys = keyEncryptionKeys
        state.activeKEK = activeKEK
        state.acceptsFormatV1 = acceptsFormatV1
        for dataKey in dataKeys {
            state.keys[dataKey.purpose, default: [:]][dataKey.version] = dataKey.key
            if dataKey.isActive { state.active[dataKey.purpose] = dataKey.version }
        }
        self.state = Mutex(state)
    }

    /// Replaces every key at once (after a rotation, a destruction or a root change).
    public func replace(with other: Keyring) {
        let fresh = other.state.withLock { $0 }
        state.withLock { $0 = fresh }
    }

    /// The versions held for a purpose.
    public func versions(of purpose: DataKeyPurpose) -> [UInt32] {
        state.withLock { ($0.keys[purpose] ?? [:]).keys.sorted() }
    }

    /// The active version of a purpose, if any.
    public func activeVersion(of purpose: DataKeyPurpose) -> UInt32? {
        state.withLock { $0.active[purpose] }
    }

    /// The active key-encryption key, which seals new KMS key material.
    public func activeKeyEncryptionKey() throws -> (version: UInt32, key: SymmetricKey) {
        try state.withLock { state in
            guard let version = state.activeKEK, let key = state.keyEncryptionKeys[version] else {
                throw CofferError.unavailable("no active key-encryption key is loaded")
            }
            return (version, key)
        }
    }

    /// Seals a version of a named KMS key's material under the active key-encryption key.
    public func sealKMSKey(_ material: SymmetricKey, keyID: UUID, version: UInt32) throws -> (kekVersion: UInt32, sealed: [UInt8]) {
        let (kekVersion, kek) = try activeKeyEncryptionKey()
        let sealed = try material.withUnsafeBytes { bytes in
            try SealedValue.seal(bytes, key: kek, keyVersion: kekVersion, associatedData: AssociatedData.kmsKey(keyID: keyID, version: version))
        }
        return (kekVersion, sealed.bytes)
    }

    /// Opens a version of a named KMS key's material with the key-encryption key its
    /// header names. Throws `unknownKeyVersion` when that key is not loaded (reload).
    public func openKMSKey(_ sealedBytes: [UInt8], keyID: UUID, version: UInt32) throws -> SymmetricKey {
        let sealed = try SealedValue(bytes: sealedBytes)
        guard let kek = state.withLock({ $0.keyEncryptionKeys[sealed.keyVersion] }) else {
            throw SealError(.unknownKeyVersion, "key-encryption key version \(sealed.keyVersion) is not loaded")
        }
        return SecretMemory.using(try sealed.open(key: kek, version: sealed.keyVersion, associatedData: AssociatedData.kmsKey(keyID: keyID, version: version))) {
            SymmetricKey(data: $0)
        }
    }

    /// Seals a value under the active data key of `purpose`.
    public func seal(_ plaintext: some DataProtocol, purpose: DataKeyPurpose, associatedData: [UInt8]) throws -> SealedValue {
        let (version, key): (UInt32, SymmetricKey) = try state.withLock { state in
            guard let version = state.active[purpose], let key = state.keys[purpose]?[version] else {
                throw CofferError.unavailable("no active \(purpose.rawValue) data key is loaded")
            }
            return (version, key)
        }
        sealed.add(1, ordering: .relaxed)
        return try SealedValue.seal(plaintext, key: key, keyVersion: version, associatedData: associatedData)
    }

    /// An HMAC-SHA256 of `message` under the active data key of `purpose`, and that key's version.
    public func authenticationCode(for message: [UInt8], purpose: DataKeyPurpose) throws -> (version: UInt32, code: [UInt8]) {
        let (version, key): (UInt32, SymmetricKey) = try state.withLock { state in
            guard let version = state.active[purpose], let key = state.keys[purpose]?[version] else {
                throw CofferError.unavailable("no active \(purpose.rawValue) data key is loaded")
            }
            return (version, key)
        }
        return (version, Array(HMAC<SHA256>.authenticationCode(for: message, using: key)))
    }

    /// Whether `code` is the HMAC-SHA256 of `message` under version `version` of `purpose`
    /// (compared in constant time); false when that version is not held.
    public func isValidAuthenticationCode(_ code: [UInt8], for message: [UInt8], purpose: DataKeyPurpose, version: UInt32) -> Bool {
        guard let key = state.withLock({ $0.keys[purpose]?[version] }) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(code, authenticating: message, using: key)
    }

    /// Config values that did not open in their place (tampered with, or a format 1 value
    /// after the reseal finished), for the metric `coffer_integrity_failures_total`.
    public var refusedValueCount: UInt64 { refusedValues.load(ordering: .relaxed) }

    /// Whether config values in sealed format 1 are still read.
    public var acceptsFormatV1: Bool { state.withLock { $0.acceptsFormatV1 } }

    /// Seals a config value in format 2 under the active database key, bound to `place`.
    public func sealConfigValue(_ plaintext: some DataProtocol, place: ConfigValuePlace) throws -> SealedValue {
        let (version, key): (UInt32, SymmetricKey) = try state.withLock { state in
            guard let version = state.active[.database], let key = state.keys[.database]?[version] else {
                throw CofferError.unavailable("no active database data key is loaded")
            }
            return (version, key)
        }
        sealed.add(1, ordering: .relaxed)
        return try SealedValue.seal(plaintext, key: key, keyVersion: version,
                                    associatedData: AssociatedData.configValue(place, format: SealedValue.formatV2), format: SealedValue.formatV2)
    }

    /// Opens a config value with the associated data of the format its bytes name. A value
    /// that does not open in `place` (its row's `write_only`, type or version edited, or
    /// its bytes copied from elsewhere) is counted and refused, as is a format 1 value once
    /// format 1 is retired.
    public func openConfigValue(_ sealed: SealedValue, place: ConfigValuePlace) throws -> [UInt8] {
        do {
            if sealed.format == SealedValue.formatV1, !acceptsFormatV1 {
                throw SealError(.authenticationFailed, "sealed format 1 is retired (every value was sealed again in format 2); this value was put back from an earlier copy")
            }
            return try open(sealed, purpose: .database, associatedData: AssociatedData.configValue(place, format: sealed.format))
        } catch let error as SealError where error.code == .authenticationFailed {
            refusedValues.add(1, ordering: .relaxed)
            throw error
        }
    }

    /// Opens a value with the data key version its header names.
    public func open(_ sealed: SealedValue, purpose: DataKeyPurpose, associatedData: [UInt8]) throws -> [UInt8] {
        let key = state.withLock { $0.keys[purpose]?[sealed.keyVersion] }
        guard let key else {
            throw SealError(.unknownKeyVersion, "\(purpose.rawValue) data key version \(sealed.keyVersion) is not loaded")
        }
        opened.add(1, ordering: .relaxed)
        return try sealed.open(key: key, version: sealed.keyVersion, associatedData: associatedData)
    }
}

import Foundation
