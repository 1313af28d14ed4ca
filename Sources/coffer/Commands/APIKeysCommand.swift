import ArgumentParser
import CofferCore
import CofferStore
import Foundation
import Logging

/// `coffer api-keys create | list | revoke`.
struct APIKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api-keys",
        abstract: "Create, list and revoke API keys (needs DATABASE_URL and the root key: each key row carries an authentication code).",
        subcommands: [Create.self, List.self, Revoke.self]
    )

    /// Opens the database, loads the keys (the `integrity` key authenticates key rows) and
    /// runs `body` with the key service.
    static func withService<T>(_ body: (APIKeyService) async throws -> T) async throws -> T {
        let configuration = try ProcessEnvironment.configuration()
        ProcessEnvironment.bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat, toStandardError: true)
        let logger = Logger(label: "coffer.api-keys")
        let settings = try await ProcessEnvironment.settings(for: configuration, logger: logger)
        let database = try await Database.connect(settings: configuration.database, logger: logger)
        do {
            let result = try await body(CofferServices.build(settings, database: database, logger: logger).apiKeys)
            await database.close()
            return result
        } catch {
            await database.close()
            throw error
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API key; its secret is printed once.")

        @Option(help: "A name for the key, e.g. the team or runner that uses it.") var name: String
        @Option(help: "The space the key is bound to (it reaches that space and its descendants).") var space: String = "root"
        @Option(help: "read, write, admin or worker.") var role: String
        @Option(help: "text or json.") var format: String = "text"

        func validate() throws {
            guard Role(rawValue: role) != nil else { throw ValidationError("--role must be one of read, write, admin, worker") }
            guard ["text", "json"].contains(format) else { throw ValidationError("--format must be text or json") }
        }

        func run() async throws {
            let role = Role(rawValue: role)!
            let created = try await APIKeysCommand.withService { try await $0.create(name: name, space: space, role: role) }
            if format == "json" {
                let object = ["id": created.record.id, "secret": created.secret, "space": created.record.space, "role": created.record.role]
                let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print("id:     \(created.record.id)")
                print("secret: \(created.secret)")
                print("space:  \(created.record.space)")
                print("role:   \(created.record.role)")
                print("The secret is shown only now; store it in your secret manager.")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List API keys (never their secrets).")

        func run() async throws {
            let keys = try await APIKeysCommand.withService { service in
                var all: [APIKeyRecord] = []
                var cursor: String?
                repeat {
                    let page = try await service.list(limit: 500, cursor: cursor)
                    all += page.items
                    cursor = page.nextCursor
                } while cursor != nil
                return all
            }
            print("ID\tNAME\tSPACE\tROLE\tCREATED\tREVOKED")
            for key in keys {
                let revoked = key.revokedAt.map { $0.formatted(.iso8601) } ?? "-"
                print("\(key.id)\t\(key.name)\t\(key.space)\t\(key.role)\t\(key.createdAt.formatted(.iso8601))\t\(revoked)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke an API key: it can no longer obtain tokens, and its tokens stop working within seconds."
        )

        @Argument(help: "The key's id.") var id: String

        func run() async throws {
            try await APIKeysCommand.withService { try await $0.revoke(id: id) }
            print("revoked \(id)")
        }
    }
}
