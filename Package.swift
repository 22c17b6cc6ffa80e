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
        .library(name: "HeraldBroker", targets: ["HeraldBroker"]),
        .executable(name: "heraldd", targets: ["heraldd"]),
        .executable(name: "herald", targets: ["herald"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.0"),
        // Latency percentiles for `herald bench`.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // The only place that includes Linux headers Swift's Glibc module does not expose.
        .target(name: "CHeraldSys"),
        // libsystemd (apt: libsystemd-dev) for readiness notification and, later, socket activation.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // Wire format and topic grammar: pure Swift, no I/O.
        .target(name: "HeraldProtocol", swiftSettings: strictness),
        // Routing core (no I/O) and the epoll server that drives it.
        .target(
            name: "HeraldBroker",
            dependencies: [
                "HeraldProtocol", "CHeraldSys",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictness
        ),
        // Client library.
        .target(name: "Herald", dependencies: ["HeraldProtocol", "CHeraldSys"], swiftSettings: strictness),
        .executableTarget(
            name: "heraldd",
            dependencies: [
                "HeraldBroker", "CSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictness
        ),
        .executableTarget(
            name: "herald",
            dependencies: [
                "Herald",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strictness
        ),
        // Shared by the test targets: the broker behaviour vectors and the wire names of error codes.
        .target(name: "HeraldTestSupport", dependencies: ["HeraldProtocol"], path: "Tests/HeraldTestSupport", swiftSettings: strictness),
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
            dependencies: ["HeraldBroker", "HeraldProtocol", "HeraldTestSupport", .product(name: "Logging", package: "swift-log")],
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
