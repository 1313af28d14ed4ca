import CofferCrypto
import CofferStore
import Crypto
import Foundation
import Logging

/// The operations of the KMS API: encrypt, decrypt, rewrap and datakey, single or batched.
extension KMSService {
    /// Runs an operation over 1 to ``maximumBatch`` items; each item succeeds or fails on
    /// its own. The request fails as a whole only when the key is unknown, out of reach or
    /// disabled, the caller may not use keys, or the database is unavailable. The outcomes
    /// are returned only once the operation's audit event is stored.
    /// - Parameter includePlaintext: for `datakey`, whether to return the new key in plaintext too.
    public func perform(_ operation: KMSOperation, key name: String, items: [KMSItem], includePlaintext: Bool = true,
                        by principal: Principal) async throws -> [KMSItemOutcome] {
        let resource = Self.resource(name)
        let action = "kms.\(operation.rawValue)"
        try await access.require(principal, .useKeys, action: action, resource: resource, space: nil)
        guard (1...Self.maximumBatch).contains(items.count) else {
            throw items.isEmpty
                ? CofferError.emptyBatch("a batch needs at least one item")
                : CofferError.tooLarge("a batch may hold at most \(Self.maximumBatch) items")
        }

        // Parse what can be parsed without the key; remember the versions to load.
        var parsed: [Result<(ciphertext: KMSCiphertext?, plaintext: [UInt8]?, context: [UInt8]), CofferError>] = []
        parsed.reserveCapacity(items.count)
        var versions: Set<Int32> = []
        for item in items {
            do {
                let context = try Self.decodeContext(item.context)
                switch operation {
                case .encrypt:
                    parsed.append(.success((nil, try Self.decodePlaintext(item.plaintext), context)))
                case .decrypt, .rewrap:
                    let ciphertext = try Self.parseCiphertext(item.ciphertext)
                    if ciphertext.version <= UInt32(Int32.max) { versions.insert(Int32(ciphertext.version)) }
                    parsed.append(.success((ciphertext, nil, context)))
                case .datakey:
                    parsed.append(.success((nil, nil, context)))
                }
            } catch let error as CofferError {
                parsed.append(.failure(error))
            }
        }

        let (keys, keyring, integrity, tree) = (self.keys, self.keyring, self.integrity, self.tree)
        let latestNeeded = operation != .decrypt
        let wanted = versions.sorted()
        let (key, material) = try await withFreshKeys { () -> (KMSKeyRecord, [Int32: SymmetricKey]) in
            let found = try await database.withSession { session in
                try await keys.findWithMaterial(name: name, reachFrom: principal.space, versions: wanted, latest: latestNeeded, on: session)
            }
            guard let (key, sealed) = found, integrity.verify(key), try await tree.confirm(key.space, within: principal.space, using: database) else {
                throw Self.notFound(name)
            }
            var material: [Int32: SymmetricKey] = [:]
            for (version, row) in sealed {
                material[version] = try keyring.openKMSKey(row.sealedKey, keyID: key.uuid, version: UInt32(version))
            }
            return (key, material)
        }
        guard key.enabled else {
            await audit.recordFailure(action, resource: resource, space: key.space, by: principal, detail: "disabled")
            throw CofferError.kmsKeyDisabled("KMS key `\(name)` is disabled; an admin can enable it")
        }

        let latest = UInt32(key.latestVersion)
        var outcomes: [KMSItemOutcome] = []
        outcomes.reserveCapacity(items.count)
        for entry in parsed {
            switch entry {
            case .failure(let error):
                outcomes.append(.failed(error))
            case .success(let (ciphertext, plaintext, context)):
                do {
                    outcomes.append(try Self.run(operation, key: key, material: material, latest: latest, ciphertext: ciphertext,
                                                 plaintext: plaintext, context: context, includePlaintext: includePlaintext))
                } catch let error as CofferError {
                    outcomes.append(.failed(error))
                }
            }
        }

        let failed = outcomes.filter { $0.error != nil }.count
        let used = Set(outcomes.compactMap(\.keyVersion)).sorted().map(String.init).joined(separator: ",")
        var detail = items.count == 1 ? "version=\(used.isEmpty ? "-" : used)" : "items=\(items.count) failed=\(failed) versions=\(used.isEmpty ? "-" : used)"
        if failed > 0, let code = outcomes.first(where: { $0.error != nil })?.error?.code { detail += " error=\(code)" }
        try await audit.recordStored(action, resource: resource, space: key.space, by: principal, outcome: failed == 0 ? .success : .failure, detail: detail)
        return outcomes
    }

    static func run(_ operation: KMSOperation, key: KMSKeyRecord, material: [Int32: SymmetricKey], latest: UInt32, ciphertext: KMSCiphertext?,
                    plaintext: [UInt8]?, context: [UInt8], includePlaintext: Bool) throws -> KMSItemOutcome {
        func seal(_ bytes: [UInt8]) throws -> KMSItemOutcome {
            guard let keyMaterial = material[Int32(latest)] else {
                throw CofferError.unavailable("KMS key `\(key.name)` version \(latest) has no material loaded; retry")
            }
            let sealed = try KMSCiphertext.seal(bytes, key: keyMaterial, version: latest,
                                                associatedData: AssociatedData.kmsCiphertext(keyID: key.uuid, version: latest, context: context))
            return KMSItemOutcome(ciphertext: sealed.text, keyVersion: Int(latest))
        }
        func open(_ ciphertext: KMSCiphertext) throws -> [UInt8] {
            let version = ciphertext.version
            guard version <= latest, let keyMaterial = material[Int32(version)] else {
                throw CofferError.unknownKeyVersion("KMS key `\(key.name)` has no version \(version); its latest is \(latest)")
            }
            guard version >= UInt32(key.minDecryptionVersion) else {
                throw CofferError.keyVersionBelowMinimum("the ciphertext is under version \(version) of KMS key `\(key.name)`, below its min_decryption_version \(key.minDecryptionVersion); an admin can lower it")
            }
            do {
                return try ciphertext.open(key: keyMaterial, associatedData: AssociatedData.kmsCiphertext(keyID: key.uuid, version: version, context: context))
            } catch {
                throw CofferError.decryptionFailed("the ciphertext does not open under KMS key `\(key.name)` version \(version) with this context (another key, another context, or altered bytes)")
            }
        }
        switch operation {
        case .encrypt:
            return try seal(plaintext ?? [])
        case .decrypt:
            guard let ciphertext else { throw invalidCiphertext }
            return KMSItemOutcome(plaintext: try open(ciphertext), keyVersion: Int(ciphertext.version))
        case .rewrap:
            guard let ciphertext else { throw invalidCiphertext }
            return try seal(try open(ciphertext))
        case .datakey:
            let dataKey = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
            var outcome = try seal(dataKey)
            if includePlaintext { outcome.plaintext = dataKey }
            return outcome
        }
    }

    // MARK: Reading items

    static let invalidCiphertext = CofferError.invalidCiphertext("`ciphertext` must be a Coffer KMS ciphertext, `coffer:v<version>:<base64>`, exactly as encrypt returned it")

    static func parseCiphertext(_ text: String?) throws -> KMSCiphertext {
        guard let text else { throw CofferError.invalidCiphertext("`ciphertext` is required") }
        guard let ciphertext = KMSCiphertext(parsing: text) else { throw invalidCiphertext }
        return ciphertext
    }

    static func decodePlaintext(_ text: String?) throws -> [UInt8] {
        guard let text else { throw CofferError.invalidPlaintext("`plaintext` is required") }
        guard text.utf8.count <= (maximumPlaintextBytes + 2) / 3 * 4 + 4 else {
            throw CofferError.tooLarge("a plaintext may be at most 64 KiB; encrypt larger data under a data key (`datakey`)")
        }
        guard let data = Data(base64Encoded: text) else {
            throw CofferError.invalidPlaintext("`plaintext` must be base64")
        }
        guard data.count <= maximumPlaintextBytes else {
            throw CofferError.tooLarge("a plaintext may be at most 64 KiB; encrypt larger data under a data key (`datakey`)")
        }
        return [UInt8](data)
    }

    static func decodeContext(_ text: String?) throws -> [UInt8] {
        guard let text else { return [] }
        guard text.utf8.count <= (maximumContextBytes + 2) / 3 * 4, let data = Data(base64Encoded: text), data.count <= maximumContextBytes else {
            throw CofferError.invalidContext("`context` must be base64 of at most 8 KiB")
        }
        return [UInt8](data)
    }
}
