// swift-tools-version: 6.1
// Coffer's micro-benchmarks (ordo-one/benchmark), a package of their own so that the
// product's build and tests do not carry the benchmark tooling.
//
//   cd benchmarks && swift package benchmark            # run them all
//   cd benchmarks && swift package benchmark --filter "seal.*"
import PackageDescription

let package = Package(
    name: "coffer-benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "coffer", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "CofferBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "CofferCrypto", package: "coffer"),
                .product(name: "CofferKeys", package: "coffer"),
                .product(name: "CofferStore", package: "coffer"),
                .product(name: "CofferCore", package: "coffer"),
                .product(name: "CofferHTTP", package: "coffer"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/CofferBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
