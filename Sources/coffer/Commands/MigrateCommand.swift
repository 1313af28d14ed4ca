import ArgumentParser
import CofferCore
import CofferStore
import Logging

/// `coffer migrate`: schema migrations, then first-time key setup or root key proof.
struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply database migrations and set up (or verify) the key hierarchy.",
        discussion: """
            Applies migrations/*.sql in order under a PostgreSQL advisory lock, then creates the \
            key-encryption key and first data keys if none exist, or proves the configured root key \
            unwraps the stored one. Safe to run from many replicas at once. Exit 3 if the root key \
            does not match; nothing is written then.
            """
    )

    func run() async throws {
        let configuration = try ProcessEnvironment.configuration()
        ProcessEnvironment.bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat, toStandardError: true)
        let logger = Logger(label: "coffer.migrate")
        let rootKey = try await ProcessEnvironment.rootKey(for: configuration, logger: logger)
        let root = rootKey.provider
        let database = try await Database.connect(settings: configuration.database, logger: logger)
        let previous = try await ProcessEnvironment.previousRoot(for: configuration, logger: logger)
        let migrator = Migrator(root: root, previous: previous, logger: logger)
        let result: Migrator.Result
        do {
            result = try await migrator.run(on: database)
        } catch {
            await database.close()
            throw error
        }
        await database.close()
        let applied = result.appliedMigrations.isEmpty ? "none pending" : result.appliedMigrations.joined(separator: ", ")
        print("migrations: \(applied); keys: \(result.keys == .created ? "created" : "verified") (root \(root.rootType.rawValue) \(root.rootKeyID))")
    }
}
