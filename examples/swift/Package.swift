// swift-tools-version:6.0
// Herald examples: a Swift package that depends on the Herald library by path, as your own
// program would (or by URL and version, once you depend on a release). `herald` here is a
// symbolic link to the repository root, so the dependency's identity is "herald" whatever
// the checkout's directory is called.
import PackageDescription

let package = Package(
    name: "herald-examples",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "herald")
    ],
    targets: [
        .executableTarget(name: "battery-service", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(name: "battery-panel", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(name: "settings-service", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(name: "settings-client", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(name: "frame-producer", dependencies: [.product(name: "Herald", package: "herald")]),
        .executableTarget(name: "frame-viewer", dependencies: [.product(name: "Herald", package: "herald")]),
    ],
    swiftLanguageModes: [.v6]
)
