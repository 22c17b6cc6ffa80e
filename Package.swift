// swift-tools-version:6.1
import PackageDescription

let strictness: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
]

let package = Package(
    name: "Herald",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Herald", targets: ["Herald"]),
        .library(name: "HeraldProtocol", targets: ["HeraldProtocol"]),
        .library(name: "HeraldCore", targets: ["HeraldCore"]),
        .library(name: "HeraldServer", targets: ["HeraldServer"]),
        .executable(name: "heraldd", targets: ["heraldd"]),
        .executable(name: "herald", targets: ["HeraldCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        // Latency percentiles for `herald bench`.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
        // heraldd's configuration file (TOML). Chosen over apple/swift-configuration, whose
        // providers read JSON/YAML/environment into flat keys and cannot name a rule's line.
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // FileDescriptor, the vocabulary type for the descriptors the client library passes.
        .package(url: "https://github.com/apple/swift-system", from: "1.8.0"),
    ],
    targets: [
        // The only place that includes Linux headers Swift's Glibc module does not expose.
        .target(name: "CHeraldSys"),
        // libsystemd (apt: libsystemd-dev) for readiness notification and, later, socket activation.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // Wire format and topic grammar: pure Swift, no I/O.
        .target(name: "HeraldProtocol", swiftSettings: strictness),
        // The routing core: sessions, subscriptions, routing, slow consumers, limits. No I/O and
        // no system calls (it may not depend on CHeraldSys), so it runs in tests, fuzzing and
        // benchmarks without sockets.
        .target(
            name: "HeraldCore",
            dependencies: ["HeraldProtocol", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictness
        ),
        // The epoll server that drives the core over Unix sockets: the only broker code that
        // touches the kernel (through CHeraldSys).
        .target(
            name: "HeraldServer",
            dependencies: [
                "HeraldCore", "HeraldProtocol", "CHeraldSys",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictness
        ),
        // heraldd's configuration file: TOML in, a BrokerConfiguration and Policy out, every
        // name resolved and every problem reported with its line.
        .target(
            name: "HeraldConfigurationFile",
            dependencies: ["HeraldCore", "HeraldProtocol", .product(name: "TOMLKit", package: "TOMLKit")],
            swiftSettings: strictness
        ),
        // Client library.
        .target(
            name: "Herald",
            dependencies: ["HeraldProtocol", "CHeraldSys", .product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "heraldd",
            dependencies: [
                "HeraldCore", "HeraldServer", "HeraldConfigurationFile", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictness
        ),
        // The `herald` tool (folder and target HeraldCLI, so it cannot be confused with the
        // Herald library on a case-insensitive file system); `herald bench` lives in Bench/.
        .executableTarget(
            name: "HeraldCLI",
            dependencies: [
                "Herald",
                // `herald monitor` speaks the protocol on a socket of its own.
                "CHeraldSys",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictness
        ),
        // Shared by the test targets: the broker behaviour vectors and the wire names of error codes.
        .target(name: "HeraldTestSupport", dependencies: ["HeraldProtocol"], path: "Tests/HeraldTestSupport", swiftSettings: strictness),
        // The client library's internals (receive buffers, inbound routing), without a broker.
        .testTarget(
            name: "HeraldTests",
            dependencies: ["Herald", "HeraldProtocol"],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "HeraldProtocolTests",
            dependencies: [
                "HeraldProtocol", "HeraldTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "HeraldBrokerTests",
            dependencies: [
                "HeraldCore", "HeraldServer", "HeraldProtocol", "HeraldConfigurationFile", "HeraldTestSupport", "CHeraldSys",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictness
        ),
        .testTarget(
            name: "HeraldIntegrationTests",
            dependencies: ["Herald", "HeraldProtocol", "HeraldTestSupport", "CHeraldSys"],
            // Scripts the tests run as other processes (read from the source tree, not bundled).
            exclude: ["Fixtures"],
            swiftSettings: strictness
        ),
    ]
)
