import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat

/// `coffer kms encrypt | decrypt`: a client of a running Coffer's KMS API, for scripts.
struct KMSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kms",
        abstract: "Encrypt or decrypt with a named KMS key of a running Coffer (token from COFFER_TOKEN).",
        discussion: """
            Reads standard input and writes standard output. The server is COFFER_URL (default \
            http://127.0.0.1:8080); the token, from `POST /api/v1/auth/token`, is COFFER_TOKEN \
            and needs the write, admin or worker role on the key's space or a parent of it.
            """,
        subcommands: [Encrypt.self, Decrypt.self]
    )

    struct Connection: ParsableArguments {
        @Option(help: "The name of the KMS key.") var key: String
        @Option(help: "Context bound to the ciphertext (UTF-8 text); decrypting needs the same context.") var context: String?
        @Option(help: "The Coffer server (default: COFFER_URL, else http://127.0.0.1:8080).") var url: String?
        @Option(help: "Seconds to wait for the server.") var timeout: Int = 30

        func validate() throws {
            guard !key.isEmpty, key.utf8.count <= 1024, key.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0 != "/" && $0.value != 0x7f }) else {
                throw ValidationError("--key must be a KMS key name")
            }
            guard (1...3600).contains(timeout) else { throw ValidationError("--timeout must be 1 to 3600 seconds") }
        }

        /// Posts `body` to the key's operation and returns the JSON answer.
        func call(_ operation: String, body: [String: String]) async throws -> [String: Any] {
            let environment = ProcessEnvironment.variables
            guard let token = environment["COFFER_TOKEN"], !token.isEmpty else {
                throw CommandFailure(code: ExitStatus.invalidConfiguration,
                                     message: "COFFER_TOKEN is not set; get a token from POST /api/v1/auth/token with an API key")
            }
            let client = try CofferClient(url: url, timeout: timeout, environment: environment)
            return try await client.call("/api/v1/kms/keys/\(CofferClient.segment(key))/\(operation)", token: token, body: body, what: operation)
        }

        var contextField: [String: String] {
            context.map { ["context": Data($0.utf8).base64EncodedString()] } ?? [:]
        }
    }

    struct Encrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Encrypt standard input (at most 64 KiB); prints `coffer:v<version>:<base64>`."
        )

        @OptionGroup var connection: Connection

        func run() async throws {
            let plaintext = FileHandle.standardInput.readDataToEndOfFile()
            let body = connection.contextField.merging(["plaintext": plaintext.base64EncodedString()]) { $1 }
            let answer = try await connection.call("encrypt", body: body)
            guard let ciphertext = answer["ciphertext"] as? String else {
                throw CommandFailure(code: ExitStatus.unexpected, message: "the server's answer has no ciphertext")
            }
            FileHandle.standardOutput.write(Data((ciphertext + "\n").utf8))
        }
    }

    struct Decrypt: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decrypt a ciphertext read from standard input; writes the plaintext bytes."
        )

        @OptionGroup var connection: Connection

        func run() async throws {
            let input = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            let ciphertext = input.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !ciphertext.isEmpty else {
                throw CommandFailure(code: ExitStatus.invalidConfiguration, message: "standard input holds no ciphertext")
            }
            let body = connection.contextField.merging(["ciphertext": ciphertext]) { $1 }
            let answer = try await connection.call("decrypt", body: body)
            guard let encoded = answer["plaintext"] as? String, let plaintext = Data(base64Encoded: encoded) else {
                throw CommandFailure(code: ExitStatus.unexpected, message: "the server's answer has no plaintext")
            }
            FileHandle.standardOutput.write(plaintext)
        }
    }
}
