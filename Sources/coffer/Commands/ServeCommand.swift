import ArgumentParser
import CofferCore
import CofferCrypto
import CofferHTTP
import CofferStore
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import ServiceLifecycle
import Logging

/// `coffer serve`: the HTTP service.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP API.",
        discussion: """
            Refuses to start (one line, non-zero exit) if migrations are pending (exit 1), the root \
            key does not unwrap the stored key (exit 3) or the database is unreachable (exit 4).
            """
    )

    func run() async throws {
        let configuration = try ProcessEnvironment.configuration()
        let server = try Self.serverBuilder(configuration)
        ProcessEnvironment.bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat, toStandardError: false)
        let logger = Logger(label: "coffer")
        let rootKey = try await ProcessEnvironment.rootKey(for: configuration, logger: logger)
        let root = rootKey.provider
        let previous = try await ProcessEnvironment.previousRoot(for: configuration, logger: logger)
        let migrator = Migrator(root: root, previous: previous, logger: logger)
        let batchSize = try CofferConfiguration.destructionBatchSize(environment: ProcessEnvironment.variables)
        let batchPause = try CofferConfiguration.destructionBatchPause(environment: ProcessEnvironment.variables)

        let revocations = RevocationList()
        // Start-up checks on one connection, so an unreachable database fails fast.
        let probe = try await Database.connect(settings: configuration.database, logger: logger, operationTimeout: .seconds(30))
        let keyring: Keyring
        let generation: Int64
        do {
            let pending = try await migrator.pendingMigrations(on: probe)
            guard pending.isEmpty else {
                throw CommandFailure(code: ExitStatus.unexpected, message: "\(pending.count) migration(s) pending (\(pending.joined(separator: ", "))); run `coffer migrate` first")
            }
            // Read before loading: a change in between makes the first poll reload, never miss.
            generation = try await KeyLifecycle.generation(on: probe, logger: logger)
            keyring = try await migrator.loadKeyring(on: probe)
            try await revocations.refresh(from: probe, logger: logger)
        } catch {
            await probe.close()
            throw error
        }
        await probe.close()

        let database = Database(settings: configuration.database, logger: logger)
        // While a previous RSA root is configured its public key stays published, so tokens it
        // signed stay valid until they expire.
        var previousPublicKeys: [RSAPublicKey] = []
        if case .rsa(let key)? = configuration.previousEncryption { previousPublicKeys.append(key.publicKey) }
        let tokens = TokenService(
            signer: root, additionalVerificationKeys: previousPublicKeys, issuer: configuration.jwtIssuer,
            audience: configuration.jwtAudience, lifetime: configuration.tokenLifetime, revocations: revocations
        )
        let lifecycle = KeyLifecycle(database: database, hierarchy: migrator.keyHierarchy, keyring: keyring, loadedGeneration: generation, batchSize: batchSize, batchPause: batchPause, logger: logger)
        var kmsCallCounts: (@Sendable () -> [String: Int])?
        if let client = rootKey.kms {
            kmsCallCounts = { client.callCounts }
        }
        let services = AppServices(
            database: database, keyring: keyring, tokens: tokens, revocations: revocations, lifecycle: lifecycle, logger: logger,
            kmsCallCounts: kmsCallCounts
        )
        let app = Application(
            router: CofferRouter.build(services: services),
            server: server,
            configuration: .init(address: .hostname(configuration.httpHost, port: configuration.httpPort), serverName: nil),
            services: [
                database.client!, RevocationPoller(revocations: revocations, database: database, logger: logger),
                KeyMaintenance(lifecycle: lifecycle, rotationPeriod: configuration.dataKeyRotationPeriod, logger: logger),
            ],
            logger: logger
        )
        logger.info("starting", metadata: [
            "version": "\(CofferCommand.version)", "listen": "\(configuration.httpHost):\(configuration.httpPort)",
            "scheme": "\(configuration.tlsCertificateFile == nil ? "http" : "https")",
            "root_type": "\(root.rootType.rawValue)", "root_key_id": "\(root.rootKeyID)", "database": "\(configuration.database.redactedDescription)",
        ])
        do {
            // SIGTERM drains the requests in flight, bounded: an orchestrator's grace period
            // (30 s in the chart, after a 5 s preStop pause) must not run out first.
            var group = ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            group.maximumGracefulShutdownDuration = .seconds(20)
            group.maximumCancellationDuration = .seconds(3)
            try await ServiceGroup(configuration: group).run()
        } catch {
            throw CommandFailure(
                code: ExitStatus.unexpected,
                message: "could not serve on \(configuration.httpHost):\(configuration.httpPort): \(error)"
            )
        }
    }

    /// Plain HTTP/1.1, or HTTPS (TLS 1.2 or newer) with the certificate chain and key of
    /// `COFFER_TLS_CERT_FILE` / `COFFER_TLS_KEY_FILE`.
    static func serverBuilder(_ configuration: CofferConfiguration) throws -> HTTPServerBuilder {
        guard let certificateFile = configuration.tlsCertificateFile, let keyFile = configuration.tlsKeyFile else { return .http1() }
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw ConfigurationError("COFFER_TLS_CERT_FILE", "cannot read a PEM certificate chain from \(certificateFile)")
        }
        guard !chain.isEmpty else {
            throw ConfigurationError("COFFER_TLS_CERT_FILE", "\(certificateFile) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw ConfigurationError("COFFER_TLS_KEY_FILE", "cannot read an unencrypted PEM private key from \(keyFile)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        do {
            return try .tls(.http1(), tlsConfiguration: tls)
        } catch {
            throw ConfigurationError("COFFER_TLS_CERT_FILE", "the certificate and key do not make a TLS configuration: \(error)")
        }
    }
}
