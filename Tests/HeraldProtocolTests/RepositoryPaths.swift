import Foundation

/// Locates checked-in files from this source file's path, so the tests read the very
/// vectors and specification in the tree rather than a bundled copy that could go stale.
enum RepositoryPaths {
    /// The package root (this file is `Tests/HeraldProtocolTests/RepositoryPaths.swift`).
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent()
        .deletingLastPathComponent()
        .deletingLastPathComponent()

    /// `Protocol/vectors`.
    static let vectors = root.appendingPathComponent("Protocol/vectors", isDirectory: true)

    /// `Protocol/PROTOCOL.md`.
    static let specification = root.appendingPathComponent("Protocol/PROTOCOL.md")
}
