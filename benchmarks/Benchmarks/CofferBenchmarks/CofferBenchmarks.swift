import Benchmark
import CofferCore
import CofferCrypto
import CofferHTTP
import CofferKeys
@_spi(Testing) import CofferStore
import Crypto
import Foundation
import Logging
import PostgresNIO

/// Micro-benchmarks of the work Coffer does per request: sealing and opening values, the
/// key-encryption key unwrap done at start, RS256 signing (token issuance) and
/// verification, bearer token verification with the cache warm and cold, and the JSON of
/// a 20-element runtime config. Run with `swift package benchmark` in this folder.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal],
        warmupIterations: 10,
        maxDuration: .seconds(2),
        maxIterations: 100_000
    )

    let dataKey = SymmetricKey(size: .bits256)
    let place = AssociatedData.configValue(ownerID: UUID(), configID: "DATABASE_URL")
    for (name, size) in [("32 B", 32), ("1 KiB", 1024), ("64 KiB", 65536)] {
        let plaintext = [UInt8](repeating: 0x61, count: size)
        Benchmark("seal \(name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try SealedValue.seal(plaintext, key: dataKey, keyVersion: 1, associatedData: place))
            }
        }
        let sealed = try? SealedValue.seal(plaintext, key: dataKey, keyVersion: 1, associatedData: place)
        Benchmark("open \(name)") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try sealed!.open(key: dataKey, version: 1, associatedData: place))
            }
        }
    }

    // One RSA-4096 key for everything below, generated once.
    let rootKey = Fixture.rootKey
    let slow = Benchmark.Configuration(maxDuration: .seconds(3), maxIterations: 300)

    Benchmark("KEK unwrap (RSA-OAEP-SHA256, 4096)", configuration: slow) { benchmark in
        let wrapped = try rootKey.publicKey.wrap([UInt8](repeating: 7, count: 32))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try rootKey.unwrap(wrapped))
        }
    }

    let message = [UInt8](repeating: 0x41, count: 400)
    Benchmark("RS256 sign (RSA-4096)", configuration: slow) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try rootKey.signRS256(message))
        }
    }
    Benchmark("RS256 verify (RSA-4096)") { benchmark in
        let signature = try rootKey.signRS256(message)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(rootKey.publicKey.verifyRS256(signature: signature, message: message))
        }
    }

    Benchmark("token verify, cache warm") { benchmark in
        let service = Fixture.tokenService()
        let token = try await service.issue(for: Fixture.apiKey).token
        _ = try service.verify(token)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(try service.verify(token))
        }
    }

    // Each sample verifies 100 tokens a fresh service has not seen: parse, RSA verify,
    // claims, cache insert. The figure is per 100 tokens.
    Benchmark(
        "token verify, cache cold (100 tokens)",
        configuration: .init(maxDuration: .seconds(3), maxIterations: 200, setup: { try await Fixture.issueColdTokens() })
    ) { benchmark in
        let service = Fixture.tokenService()
        let tokens = Fixture.coldTokens
        benchmark.startMeasurement()
        for token in tokens {
            blackHole(try service.verify(token))
        }
    }

    // One database round trip through the service's pool, when a database is given:
    // COFFER_BENCH_DATABASE_URL=postgres://... swift package benchmark --filter "database.*"
    if let url = ProcessInfo.processInfo.environment["COFFER_BENCH_DATABASE_URL"] {
        Benchmark("database round trip (SELECT 1 through the pool)", configuration: .init(maxDuration: .seconds(3))) { benchmark in
            let database = Database(settings: try DatabaseSettings(url: url), logger: Logger(label: "bench"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await database.client!.run() }
                _ = try await database.withConnection { try await $0.query("SELECT 1", logger: Logger(label: "bench")).collect() }
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(try await database.withConnection { try await $0.query("SELECT 1", logger: Logger(label: "bench")).collect() })
                }
                benchmark.stopMeasurement()
                group.cancelAll()
            }
        }
    }

    if let url = ProcessInfo.processInfo.environment["COFFER_BENCH_DATABASE_URL"] {
        Benchmark("database round trip (SELECT 1, pool without deadline)", configuration: .init(maxDuration: .seconds(3))) { benchmark in
            let database = Database(settings: try DatabaseSettings(url: url), logger: Logger(label: "bench"))
            let client = database.client!
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                _ = try await client.withConnection { try await $0.query("SELECT 1", logger: Logger(label: "bench")).collect() }
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    blackHole(try await client.withConnection { try await $0.query("SELECT 1", logger: Logger(label: "bench")).collect() })
                }
                benchmark.stopMeasurement()
                group.cancelAll()
            }
        }
        Benchmark("database round trip (SELECT 1, one connection)", configuration: .init(maxDuration: .seconds(3))) { benchmark in
            let settings = try DatabaseSettings(url: url)
            let connection = try await PostgresConnection.connect(configuration: try settings.connectionConfiguration(), id: 1, logger: Logger(label: "bench"))
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(try await connection.query("SELECT 1", logger: Logger(label: "bench")).collect())
            }
            benchmark.stopMeasurement()
            try await connection.close()
        }
    }

    let items = (0..<20).map { index in
        RuntimeConfigItem(
            id: "VARIABLE_\(index)", type: index % 4 == 0 ? .fileMount : .environmentVariable,
            value: String(repeating: "v", count: 40), writeOnly: index % 2 == 1,
            source: index < 10 ? "stack" : "context:shared-\(index % 3)"
        )
    }
    Benchmark("JSON of a 20-element runtime config") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try RuntimeConfigJSON.encode(items))
        }
    }

    // What every request adds to /metrics (RequestLogMiddleware): one counter and one
    // latency histogram, through swift-prometheus's registry.
    let metrics = Metrics()
    Benchmark("metrics of one request (counter and histogram)") { benchmark in
        for index in benchmark.scaledIterations {
            metrics.increment(.httpRequests, ["/api/v1/stacks/{id}/config/{configId}", "GET", "200"])
            metrics.observe(.httpRequestDuration, ["/api/v1/stacks/{id}/config/{configId}", "GET"], seconds: Double(index % 50) / 10_000)
        }
    }
}

enum Fixture {
    static let rootKey: RSAPrivateKey = try! RSAPrivateKey.generate(bits: 4096)

    static let apiKey = APIKeyRecord(
        id: "ak_0123456789abcdef0123", name: "bench", space: "root", role: "worker", secretHash: [UInt8](repeating: 0, count: 32)
    )

    nonisolated(unsafe) static var coldTokens: [String] = []

    static func issueColdTokens() async throws {
        guard coldTokens.isEmpty else { return }
        let service = tokenService()
        for _ in 0..<100 { coldTokens.append(try await service.issue(for: apiKey).token) }
    }

    static func tokenService() -> TokenService {
        TokenService(signer: RSARootKey(privateKey: rootKey), issuer: "coffer", audience: "coffer", lifetime: 3600)
    }
}
