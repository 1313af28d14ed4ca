// swift-tools-version: 6.1
import PackageDescription

// Layers, lowest first: CofferCrypto (no I/O) ← CofferKeys (root key providers) ←
// CofferStore (PostgreSQL) ← CofferCore (domain services) ← CofferHTTP (routes) ← coffer (CLI).
let package = Package(
    name: "coffer",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "coffer", targets: ["coffer"]),
        // Libraries for the micro-benchmarks in benchmarks/ (a package of its own).
        .library(name: "CofferCrypto", targets: ["CofferCrypto"]),
        .library(name: "CofferKeys", targets: ["CofferKeys"]),
        .library(name: "CofferStore", targets: ["CofferStore"]),
        .library(name: "CofferCore", targets: ["CofferCore"]),
        .library(name: "CofferHTTP", targets: ["CofferHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .target(
            name: "CofferCrypto",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "CofferKeys",
            dependencies: [
                "CofferCrypto",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CofferMigrations",
            path: "migrations",
            resources: [.embedInCode("0001_initial.sql"), .embedInCode("0002_domain.sql"), .embedInCode("0003_key_lifecycle.sql"),
                        .embedInCode("0004_kms_keys.sql"), .embedInCode("0005_data_path.sql"),
                        .embedInCode("0006_autoattach_audit.sql"),
                        .embedInCode("0007_element_bound.sql"),
                        .embedInCode("0008_row_integrity.sql"),
                        .embedInCode("0009_tamper_evidence.sql"),
                        .embedInCode("0010_tree_integrity.sql")]
        ),
        .target(
            name: "CofferStore",
            dependencies: [
                "CofferCrypto", "CofferMigrations",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CofferCore",
            dependencies: [
                "CofferCrypto", "CofferKeys", "CofferStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // Fuzz targets (run under libFuzzer by scripts/fuzz, replayed by CofferFuzzingTests).
        .target(
            name: "CofferFuzzing",
            dependencies: [
                "CofferCore", "CofferCrypto", "CofferKeys",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(name: "CLibFuzzer"),
        // Process hygiene the C library offers and Swift cannot call (prctl is variadic).
        .target(name: "CCofferProcess"),
        .executableTarget(
            name: "coffer-fuzz",
            dependencies: ["CofferFuzzing", "CLibFuzzer"]
        ),
        .target(
            name: "CofferHTTP",
            dependencies: [
                "CofferCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("openapi.yaml")]
        ),
        .executableTarget(
            name: "coffer",
            dependencies: [
                "CofferCore", "CofferHTTP", "CofferKeys", "CofferStore", "CCofferProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "CofferTestSupport",
            dependencies: [
                "CofferCrypto", "CofferStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            path: "Tests/CofferTestSupport"
        ),
        .testTarget(name: "CofferCryptoTests", dependencies: ["CofferCrypto"]),
        .testTarget(
            name: "CofferKeysTests",
            dependencies: [
                "CofferKeys", "CofferTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(name: "CofferStoreTests", dependencies: ["CofferStore", "CofferMigrations", "CofferTestSupport"]),
        .testTarget(name: "CofferCoreTests", dependencies: ["CofferCore", "CofferMigrations", "CofferTestSupport"]),
        .testTarget(
            name: "CofferHTTPTests",
            dependencies: [
                "CofferHTTP", "CofferTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        .testTarget(name: "CofferFuzzingTests", dependencies: ["CofferFuzzing"], exclude: ["Regressions"]),
        .testTarget(name: "CofferCLITests", dependencies: ["CofferTestSupport", "CofferCrypto", "CofferKeys", "CofferMigrations"]),
    ]
)
