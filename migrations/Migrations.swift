// The SQL files of this folder, compiled into the binary so `coffer migrate` needs no
// files at run time. Each file must be listed in Package.swift (`.embedInCode`) and
// here, in order; a test checks that this list matches the folder byte for byte.
// SwiftPM names an embedded file by its name with `.` replaced and its first character
// replaced by `_` (so `0001_initial.sql` is `_001_initial_sql`).

/// One schema migration: its file name and SQL text.
public struct Migration: Sendable {
    /// The file name, e.g. `0001_initial.sql`; migrations apply in this order.
    public let name: String
    /// The SQL, applied as one transaction.
    public let sql: String

    /// A migration from its name and SQL text.
    public init(name: String, sql: String) {
        self.name = name
        self.sql = sql
    }

    init(_ name: String, _ bytes: [UInt8]) {
        self.name = name
        self.sql = String(decoding: bytes, as: UTF8.self)
    }
}

/// All of Coffer's migrations, in order.
public enum CofferMigrations {
    public static let all: [Migration] = [
        Migration("0001_initial.sql", PackageResources._001_initial_sql),
        Migration("0002_domain.sql", PackageResources._002_domain_sql),
        Migration("0003_key_lifecycle.sql", PackageResources._003_key_lifecycle_sql),
        Migration("0004_kms_keys.sql", PackageResources._004_kms_keys_sql),
        Migration("0005_data_path.sql", PackageResources._005_data_path_sql),
        Migration("0006_autoattach_audit.sql", PackageResources._006_autoattach_audit_sql),
        Migration("0007_element_bound.sql", PackageResources._007_element_bound_sql),
        Migration("0008_row_integrity.sql", PackageResources._008_row_integrity_sql),
        Migration("0009_tamper_evidence.sql", PackageResources._009_tamper_evidence_sql),
        Migration("0010_tree_integrity.sql", PackageResources._010_tree_integrity_sql),
    ]
}
