import ArgumentParser
import CofferCore
import CofferKeys
import CofferStore
import Foundation
import Logging

/// `coffer keys list | rotate [--rewrap] | destroy VERSION_ID | jobs` (CONTRACT §5).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List, rotate and destroy key versions.",
        discussion: """
            Needs the root key configuration (ENCRYPTION_*) and DATABASE_URL. Running services \
            load new keys within seconds; destruction jobs run in `coffer serve` (or in \
            `coffer keys destroy --wait`).
            """,
        subcommands: [List.self, Rotate.self, Destroy.self, Reseal.self, Jobs.self]
    )

    /// Opens the database, builds the services with the configured root(s) and runs `body`
    /// with their key lifecycle.
    static func withLifecycle<T>(_ body: (KeyLifecycle) async throws -> T) async throws -> T {
        try await withServices(label: "coffer.keys") { try await body($0.keys) }
    }

    /// Opens the database, builds the services with the configured root(s) and runs `body`
    /// with them, closing the database after.
    static func withServices<T>(label: String, _ body: (CofferServices) async throws -> T) async throws -> T {
        let configuration = try ProcessEnvironment.configuration()
        ProcessEnvironment.bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat, toStandardError: true)
        let logger = Logger(label: label)
        let settings = try await ProcessEnvironment.settings(for: configuration, logger: logger)
        let database = try await Database.connect(settings: configuration.database, logger: logger)
        do {
            let services = try await CofferServices.build(settings, database: database, logger: logger)
            let result = try await body(services)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every key version: state, creation time, what it seals, which root wraps it.")

        func run() async throws {
            let views = try await KeysCommand.withLifecycle { try await $0.list() }
            print("ID\tSTATE\tCREATED\tSEALED BY\tVALUES\tROOT")
            for view in views {
                print([view.id, view.state.rawValue, view.createdAt.formatted(.iso8601), view.kekVersion.map { "kek-v\($0)" } ?? "-",
                       view.values.map(String.init) ?? "-", view.root ?? "-"].joined(separator: "\t"))
            }
        }
    }

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make new versions of the key-encryption key and every data key active.",
            discussion: "Older versions keep decrypting. With --rewrap every data key version is resealed under the new key-encryption key at once, and key-encryption keys nothing needs any more are erased."
        )

        @Flag(help: "Reseal every data key version under the new key-encryption key.") var rewrap = false

        func run() async throws {
            let result = try await KeysCommand.withLifecycle { try await $0.rotate(rewrap: rewrap) }
            let dataKeys = result.dataKeyVersions.sorted { $0.key < $1.key }.map { "\($0.key)-v\($0.value)" }.joined(separator: ", ")
            print("active: kek-v\(result.kekVersion), \(dataKeys)")
            if rewrap { print("rewrapped \(result.rewrapped) data key version(s); erased: \(result.erasedKEKs.map { "kek-v\($0)" }.joined(separator: ", ").ifEmpty("none"))") }
        }
    }

    struct Destroy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy a retired key version (e.g. database-v1, kek-v1).",
            discussion: "For a data key, starts a job that re-encrypts every value and history version sealed under it with the active version, then erases it. The job is a row in PostgreSQL: `coffer serve` runs it (one replica at a time) and resumes it after a restart. --wait runs it here instead."
        )

        @Argument(help: "The version id, as `coffer keys list` shows it.") var id: String
        @Flag(help: "Run the job in this process until it completes.") var wait = false

        func run() async throws {
            try await KeysCommand.withLifecycle { lifecycle in
                guard let job = try await lifecycle.destroy(id) else {
                    print("destroyed \(id)")
                    return
                }
                print("job \(job.id): destroying \(job.purpose)-v\(job.version), \(job.total) value(s) to re-encrypt")
                if wait {
                    _ = try await lifecycle.runPendingJobs()
                    let finished = try await lifecycle.jobs().first { $0.id == job.id }
                    print("job \(job.id): \(finished?.state.rawValue ?? "unknown"), \(finished?.done ?? 0)/\(finished?.total ?? 0)")
                }
            }
        }
    }

    struct Reseal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Seal every config value written before sealed format 2 again, in format 2.",
            discussion: """
            Format 2 binds a value's type, write_only and version into its associated data, so a row \
            edited in SQL no longer discloses or rolls back a value. Run this once after upgrading: it \
            starts a job that `coffer serve` runs (one replica at a time) and resumes after a restart, \
            or that --wait runs here. Both formats open until it completes; then format 1 is refused \
            (a format 1 value found later was put back from an earlier copy of the database).
            """
        )

        @Flag(help: "Run the job in this process until it completes.") var wait = false

        func run() async throws {
            try await KeysCommand.withLifecycle { lifecycle in
                let job = try await lifecycle.reseal()
                print("job \(job.id): resealing \(job.total) value(s) in sealed format 2")
                if wait {
                    _ = try await lifecycle.runPendingJobs()
                    let finished = try await lifecycle.jobs().first { $0.id == job.id }
                    print("job \(job.id): \(finished?.state.rawValue ?? "unknown"), \(finished?.done ?? 0)/\(finished?.total ?? 0)")
                }
            }
        }
    }

    struct Jobs: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Destruction and reseal jobs and their progress.")

        func run() async throws {
            let jobs = try await KeysCommand.withLifecycle { try await $0.jobs() }
            print("JOB\tKEY\tSTATE\tDONE\tTOTAL\tCREATED\tFINISHED")
            for job in jobs {
                print(["\(job.id)", job.kind == .reseal ? "reseal" : "\(job.purpose)-v\(job.version)", job.state.rawValue, "\(job.done)", "\(job.total)",
                       job.createdAt.formatted(.iso8601), job.finishedAt?.formatted(.iso8601) ?? "-"].joined(separator: "\t"))
            }
        }
    }
}

/// `coffer root-key migrate`.
struct RootKeyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "root-key",
        abstract: "Move the key hierarchy to another root key.",
        subcommands: [Migrate.self]
    )

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rewrap the key-encryption key(s) from the PREVIOUS_ENCRYPTION_* root to the ENCRYPTION_* root.",
            discussion: """
                Set PREVIOUS_ENCRYPTION_TYPE and its key variables to the root that wraps the stored \
                keys now, and ENCRYPTION_* to the new one (RSA→KMS, KMS→RSA, RSA→RSA, KMS→KMS). \
                Proves that every data key and a sample of values open under the new root before \
                committing. Running services keep working if they have either root configured; \
                restart them with the new root (and the old one as PREVIOUS_* until tokens signed \
                by the old RSA key have expired).
                """
        )

        func run() async throws {
            let configuration = try ProcessEnvironment.configuration()
            guard configuration.previousEncryption != nil else {
                throw ConfigurationError("PREVIOUS_ENCRYPTION_TYPE", "is required: describe the root that wraps the stored keys now with PREVIOUS_ENCRYPTION_*")
            }
            let result = try await KeysCommand.withLifecycle { try await $0.migrateRoot() }
            let rewrapped = result.rewrapped.map { "kek-v\($0)" }.joined(separator: ", ").ifEmpty("none")
            print("rewrapped: \(rewrapped); already under the new root: \(result.alreadyMigrated.count); checked \(result.dataKeysChecked) data key(s) and \(result.valuesChecked) value(s)")
        }
    }
}

extension String {
    func ifEmpty(_ replacement: String) -> String { isEmpty ? replacement : self }
}
