// swift-tools-version:6.1
import PackageDescription

// Herald's benchmarks, kept in their own package so the benchmark dependency (and its
// malloc interposer) never reaches the main package. Run from this directory:
//     swift package --scratch-path ../.build-benchmarks benchmark
let swiftSettings: [SwiftSetting] = [.swiftLanguageMode(.v6)]

/// The main package is `..`; SwiftPM names a path dependency after its directory, which is
/// whatever the checkout is called, so look the name up rather than hard-code it.
let herald = Context.packageDirectory.split(separator: "/").dropLast().last.map(String.init) ?? "main"

/// One benchmark suite: `Benchmarks/<name>/<name>.swift`, found and run by the plugin.
func benchmarkTarget(_ name: String, dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: dependencies + [.product(name: "Benchmark", package: "benchmark")],
        path: "Benchmarks/\(name)",
        swiftSettings: swiftSettings,
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "HeraldBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        // MallocInterposer: malloc counting without jemalloc (Swift 6.3+). Naming the trait
        // also leaves out the default RuntimeInterposer trait, whose package is not needed.
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        // Drives an InMemoryBroker: handshakes, subscriptions, pre-encoded PUBLISH batches.
        .target(
            name: "HeraldBenchSupport",
            dependencies: [
                .product(name: "HeraldCore", package: herald),
                .product(name: "HeraldProtocol", package: herald),
            ],
            swiftSettings: swiftSettings
        ),
        benchmarkTarget("CodecBenchmarks", dependencies: [.product(name: "HeraldProtocol", package: herald)]),
        benchmarkTarget(
            "MatchingBenchmarks",
            dependencies: [
                "HeraldBenchSupport", .product(name: "HeraldCore", package: herald),
                .product(name: "HeraldProtocol", package: herald),
            ]),
        benchmarkTarget(
            "FanOutBenchmarks",
            dependencies: [
                "HeraldBenchSupport", .product(name: "HeraldCore", package: herald),
                .product(name: "HeraldProtocol", package: herald),
            ]),
    ]
)
