import CHeraldSys
import Foundation
import Testing

/// A real `heraldd` started for one test on its own abstract address. Readiness comes from
/// the broker's sd_notify READY=1 on a NOTIFY_SOCKET the test listens on, never from a sleep.
/// The process is killed when the value goes away if the test did not stop it.
///
/// Every wait is `async` and gives its thread back while it waits: Swift Testing runs tests
/// on the cooperative pool (one thread per core, two here), and a test blocked for a
/// broker's shutdown grace would stall every other test's continuations behind it.
final class BrokerProcess: @unchecked Sendable {
    let address: String
    let process = Process()
    let logURL: URL
    /// The broker's sd_notify messages (READY=1, RELOADING=1, STATUS=…).
    let notifications: NotifySocket
    private var stopped = false

    /// Starts `heraldd --address <unique> <arguments>` and waits until it is ready.
    /// With `addressFromEnvironment`, the address is passed as `$HERALD_ADDRESS` instead of `--address`.
    /// With `descriptorLimit`, the broker runs under `prlimit --nofile=N:N` (soft and hard), as a
    /// service with a low limit would.
    /// With `exactAddress`, the broker listens there instead of on a fresh unique name.
    init(_ arguments: [String] = [], purpose: String = "broker", logLevel: String = "info", addressFromEnvironment: Bool = false,
        descriptorLimit: Int? = nil, exactAddress: String? = nil) async throws {
        address = exactAddress ?? TestEnvironment.uniqueAddress(purpose)
        logURL = FileManager.default.temporaryDirectory.appendingPathComponent("heraldd-\(getpid())-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)

        let notify = try NotifySocket()
        notifications = notify
        // A short shutdown grace: raw test clients do not close on GOODBYE, and a stop would
        // otherwise always take the default 5 s.
        let brokerArguments = (addressFromEnvironment ? [] : ["--address", address]) + ["--log-level", logLevel, "--shutdown-grace", "2"] + arguments
        if let descriptorLimit {
            // prlimit sets the limit and execs heraldd: same pid.
            process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
            process.arguments = ["--nofile=\(descriptorLimit):\(descriptorLimit)", TestEnvironment.heralddPath] + brokerArguments
        } else {
            process.executableURL = URL(fileURLWithPath: TestEnvironment.heralddPath)
            process.arguments = brokerArguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.address
        environment["HERALD_ADDRESS"] = addressFromEnvironment ? address : nil
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: logURL)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        guard await notify.waitForReady(timeout: 20) else {
            process.terminate()
            throw BrokerProcessError.notReady(log: log)
        }
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? FileManager.default.removeItem(at: logURL)
    }

    var pid: Int32 { process.processIdentifier }

    /// What the broker logged so far.
    var log: String { (try? String(contentsOf: logURL, encoding: .utf8)) ?? "" }

    /// SIGHUP, then waits until the broker has reloaded: a READY=1 after the RELOADING=1
    /// (heraldd sends READY=1 whether or not the file could be applied).
    func reload(timeout: Double = 20) async -> Bool {
        let before = notifications.count
        kill(process.processIdentifier, SIGHUP)
        guard await notifications.waitFor(timeout: timeout, from: before, { $0.split(separator: "\n").contains("RELOADING=1") }) else {
            return false
        }
        return await notifications.waitFor(timeout: timeout, from: before) {
            $0.split(separator: "\n").contains("READY=1") && !$0.contains("RELOADING=1")
        }
    }

    /// Sends `signal` and waits (bounded) for the exit status.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 15) async -> Int32? {
        kill(process.processIdentifier, signal)
        return await waitForExit(timeout: timeout)
    }

    /// Waits for the process to exit; nil if it is still running after `timeout` seconds.
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        guard !process.isRunning else { return nil }
        return process.terminationStatus
    }
}

enum BrokerProcessError: Error, CustomStringConvertible {
    case notReady(log: String)
    var description: String {
        switch self {
        case .notReady(let log): "heraldd did not report READY=1; its log:\n\(log)"
        }
    }
}
