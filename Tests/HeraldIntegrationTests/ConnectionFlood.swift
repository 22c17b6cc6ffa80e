import Foundation

/// `Fixtures/connection-flood.py` run as a separate process, optionally as `nobody`: it
/// opens and holds connections (without a handshake, or each after its HELLO was welcomed),
/// then churns further connections for a while, and holds what it opened until ``end()``.
final class ConnectionFlood: @unchecked Sendable {
    struct Phase {
        let connections: Int
        let failed: Int
        let seconds: Double
        /// With `hello`: connections the broker welcomed, and those it refused with an ERROR.
        let welcomed: Int
        let refused: Int
    }

    private let process: CLIProcess
    private let directory: URL

    /// Starts the flood against `address`: `hold` connections kept open, then `churnSeconds`
    /// of connecting and closing. `asNobody` runs it as uid 65534 (needs root). With `hello`,
    /// every connection sends HELLO and waits for the broker's answer before the next one.
    init(address: String, hold: Int, churnSeconds: Double, asNobody: Bool, hello: Bool = false) throws {
        // A copy where `nobody` can read it (the checkout may be private).
        directory = URL(fileURLWithPath: "/tmp/herald-flood-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        let script = directory.appendingPathComponent("connection-flood.py").path
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/connection-flood.py")
        try FileManager.default.copyItem(atPath: source.path, toPath: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script)
        process = try CLIProcess(
            [script, address, "\(hold)", "\(churnSeconds)"] + (hello ? ["hello"] : []), executable: "/usr/bin/python3",
            prefix: asNobody ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [])
    }

    deinit { try? FileManager.default.removeItem(at: directory) }

    /// Waits until every connection to hold is open.
    func waitUntilHeld(timeout: Double = 30) async throws -> Phase { try await phase("held", timeout: timeout) }

    /// Waits until the churn is over (the held connections are still open).
    func waitUntilChurned(timeout: Double = 60) async throws -> Phase { try await phase("churned", timeout: timeout) }

    private var ended = false

    /// Closes everything the flood holds and waits for it to exit (once; later calls do nothing).
    func end() async {
        guard !ended else { return }
        release()
        _ = await process.waitForExit(timeout: 10)
    }

    /// Tells the flood to close everything and exit, without waiting (for a `defer`; the
    /// process is killed when this value goes away if it has not exited by then).
    func release() {
        ended = true
        process.write("", close: true)
    }

    private func phase(_ name: String, timeout: Double) async throws -> Phase {
        guard let line = await process.waitForLine(timeout: timeout, where: { $0.hasPrefix(name + " ") }) else {
            throw RawConnectionError.unexpected("the flood did not report '\(name)': \(process.standardError)")
        }
        let fields = line.split(separator: " ")
        let number = { (index: Int) in index < fields.count ? Int(fields[index]) ?? -1 : -1 }
        return Phase(
            connections: number(1), failed: number(2), seconds: fields.count > 3 ? Double(fields[3]) ?? .nan : .nan,
            welcomed: number(4), refused: number(5))
    }
}
