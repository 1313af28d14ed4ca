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
            key does not unwrap the stored key (exit 3), the database is unreachable (exit 4) or KMS is \
            unreachable (exit 5).
            """
    )

    func run() async throws {
        let configuration = try ProcessEnvironment.configuration()
        let server = try Self.serverBuilder(configuration)
        ProcessEnvironment.bootstrapLogging(level: configuration.logLevel, format: configuration.logFormat, toStandardError: false)
        let logger = Logger(label: "coffer")
        for warning in configuration.warnings { logger.warning("\(warning)") }
        let settings = try await ProcessEnvironment.settings(for: configuration, logger: logger)
        let database = Database(settings: configuration.database, logger: logger)
        // Start-up checks on one connection, so an unreachable database fails fast.
        let probe = try await Database.connect(settings: configuration.database, logger: logger, operationTimeout: .seconds(30))
        let services: CofferServices
        do {
            services = try await CofferServices.build(settings, database: database, checkingOn: probe, logger: logger)
        } catch {
            await probe.close()
            throw error
        }
        await probe.close()
        let app = CofferApplication.build(
            services: services, server: server, address: .hostname(configuration.httpHost, port: configuration.httpPort), logger: logger
        )
        let root = settings.root
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
