import CofferCrypto
import CofferStore
import Foundation
import Logging

/// Root key migration: rewrapping every key-encryption key under the configured root.
extension KeyLifecycle {
    // MARK: Root key migration

    /// Rewraps every key-encryption key that has material under the configured root,
    /// unwrapping with whichever of this process's roots wrapped it, then proves that
    /// every data key and a sample of values open with the new root alone.
    public func migrateRoot(sampleSize: Int = 100) async throws -> RootMigrationResult {
        let (keys, lifecycle, hierarchy, audit, root) = (self.keys, self.lifecycle, self.hierarchy, self.audit, hierarchy.root)
        let result = try await database.transaction { session -> RootMigrationResult in
            try await lifecycle.lockKeyChanges(on: session)
            var rewrapped: [Int] = []
            var already: [Int] = []
            for kek in try await keys.keyEncryptionKeys(on: session) where kek.wrappedKey != nil {
                if kek.rootType == root.rootType.rawValue && kek.rootKeyID == root.rootKeyID {
                    already.append(Int(kek.version))
                    continue
                }
                let material = try await hierarchy.unwrap(kek)
                var raw = material.withUnsafeBytes { Array($0) }
                defer { SecretMemory.zero(&raw) }
                let wrapped = try await root.wrap(raw)
                try await lifecycle.rewrapKeyEncryptionKey(
                    version: kek.version, rootType: root.rootType.rawValue, rootKeyID: root.rootKeyID, wrappedKey: wrapped, on: session
                )
                rewrapped.append(Int(kek.version))
            }
            // Prove the new root alone opens everything, before committing.
            let proof = KeyHierarchy(root: root, logger: Logger(label: "coffer.keys"))
            let fresh = try await proof.loadKeyring(on: session)
            let dataKeys = try await keys.dataKeys(on: session).filter { $0.sealedKey != nil }.count
            var checked = 0
            for row in try await lifecycle.sampleValues(limit: sampleSize, on: session) {
                _ = try fresh.openConfigValue(try SealedValue(bytes: row.sealedValue), place: row.place)
                checked += 1
            }
            try await lifecycle.bumpGeneration(on: session)
            try await audit.record("keys.root_migrate", resource: "keys", space: "root", by: .commandLine,
                                   detail: "root=\(root.rootType.rawValue):\(root.rootKeyID) rewrapped=\(rewrapped.map(String.init).joined(separator: ","))",
                                   on: session)
            return RootMigrationResult(rewrapped: rewrapped, alreadyMigrated: already, dataKeysChecked: dataKeys, valuesChecked: checked)
        }
        logger.info("root key migrated", metadata: ["root_type": "\(root.rootType.rawValue)", "root_key_id": "\(root.rootKeyID)"])
        return result
    }
}
