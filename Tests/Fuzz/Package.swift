// swift-tools-version:6.1
import PackageDescription

// libFuzzer targets for Herald, in their own package so the main package never builds with
// fuzzer instrumentation. Build and run them with Tests/Fuzz/run.sh (it passes
// -sanitize=fuzzer,address to every module).
let herald = Context.packageDirectory.split(separator: "/").dropLast(2).last.map(String.init) ?? "main"

/// A fuzz target: its `main.swift` hands its test function to `FuzzDriver.runFuzzer`.
func fuzzTarget(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name, dependencies: dependencies + ["FuzzDriver"], path: "Sources/\(name)",
        swiftSettings: [.swiftLanguageMode(.v6)])
}

let package = Package(
    name: "HeraldFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(path: "../..")],
    targets: [
        // libFuzzer's driver, called from each target's main (SwiftPM links an executable's own main).
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver", swiftSettings: [.swiftLanguageMode(.v6)]),
        fuzzTarget("FuzzFrameDecoder", [.product(name: "HeraldProtocol", package: herald)]),
        fuzzTarget("FuzzBrokerSession", [
            .product(name: "HeraldCore", package: herald), .product(name: "HeraldProtocol", package: herald),
        ]),
    ]
)
