import Foundation
import Testing

/// The unit files in examples/systemd pass `systemd-analyze verify`, with ExecStart pointing
/// at the binaries this build made (verify insists that the command exists).
@Suite("examples/systemd unit files")
struct UnitFileTests {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("examples/systemd")

    static let units = ["heraldd.socket", "heraldd.service", "herald-system.socket", "herald-system.service", "herald-power-log.service"]

    @Test(arguments: units)
    func unitFileVerifies(_ name: String) throws {
        let text = try String(contentsOf: Self.directory.appendingPathComponent(name), encoding: .utf8)
        let products = TestEnvironment.productsDirectory.path + "/"
        let rewritten = text.replacingOccurrences(of: "%h/.local/bin/", with: products)
            .replacingOccurrences(of: "/usr/local/bin/", with: products)
        let copy = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("herald-units-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: copy, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: copy) }
        // The socket/service pairs refer to each other: verify each with its partner present.
        for unit in Self.units {
            let body = try String(contentsOf: Self.directory.appendingPathComponent(unit), encoding: .utf8)
                .replacingOccurrences(of: "%h/.local/bin/", with: products).replacingOccurrences(of: "/usr/local/bin/", with: products)
            try body.write(to: copy.appendingPathComponent(unit), atomically: true, encoding: .utf8)
        }
        try rewritten.write(to: copy.appendingPathComponent(name), atomically: true, encoding: .utf8)
        let verify = Process()
        verify.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        verify.arguments = ["verify", copy.appendingPathComponent(name).path]
        var environment = ProcessInfo.processInfo.environment
        environment["SYSTEMD_LOG_LEVEL"] = "notice"
        verify.environment = environment
        let output = Pipe()
        verify.standardOutput = output
        verify.standardError = output
        try verify.run()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        verify.waitUntilExit()
        #expect(verify.terminationStatus == 0, "\(said)")
        #expect(said.isEmpty, "systemd-analyze verify \(name): \(said)")
    }
}
