import Foundation
import Herald

/// The real `herald` tool run as a child process, with its output collected line by line.
final class CLIProcess: @unchecked Sendable {
    let process = Process()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""
    private let stdinPipe = Pipe()

    /// Starts `herald <arguments>`; `executable` overrides the binary (e.g. a copy run as another user).
    init(_ arguments: [String], executable: String = TestEnvironment.heraldPath, prefix: [String] = []) throws {
        if prefix.isEmpty {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: prefix[0])
            process.arguments = Array(prefix.dropFirst()) + [executable] + arguments
        }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "HERALD_ADDRESS")
        process.environment = environment
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = stdinPipe
        out.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stdoutText += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self, !data.isEmpty else { return }
            self.lock.withLock { self.stderrText += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    var standardOutput: String { lock.withLock { stdoutText } }
    var standardError: String { lock.withLock { stderrText } }
    var lines: [String] { standardOutput.split(separator: "\n").map(String.init) }

    /// Writes to the tool's standard input; `close` ends it.
    func write(_ text: String, close: Bool = false) {
        // `try?`: the process may have exited (EPIPE), or an earlier call closed the pipe.
        try? stdinPipe.fileHandleForWriting.write(contentsOf: Data(text.utf8))
        if close { try? stdinPipe.fileHandleForWriting.close() }
    }

    /// Waits until a line of output satisfies `predicate` (or the process exits, or time runs out).
    @discardableResult
    /// Polls without holding a thread (tests share a two-thread cooperative pool).
    func waitForLine(timeout: Double = 20, where predicate: (String) -> Bool) async -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = lines.first(where: predicate) { return line }
            if !process.isRunning { return lines.first(where: predicate) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return nil
    }

    /// Waits until standard error satisfies `predicate`; false if the process exits or time runs out first.
    func waitForStandardError(timeout: Double = 20, _ predicate: (String) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(standardError) { return true }
            if !process.isRunning { return predicate(standardError) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    /// Waits for the exit status (nil on timeout).
    func waitForExit(timeout: Double = 20) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Task.sleep(for: .milliseconds(5)) }
        guard !process.isRunning else { return nil }
        // Let the readability handlers take the last bytes.
        try? await Task.sleep(for: .milliseconds(50))
        return process.terminationStatus
    }

    /// Runs `herald <arguments>` to completion and returns (status, stdout, stderr).
    static func run(_ arguments: [String], input: String? = nil, timeout: Double = 30) async throws -> (Int32?, String, String) {
        let cli = try CLIProcess(arguments)
        cli.write(input ?? "", close: true)
        let status = await cli.waitForExit(timeout: timeout)
        return (status, cli.standardOutput, cli.standardError)
    }
}

extension Bus {
    /// Waits (up to about 10 s) until the broker lists a peer that `isPeer` accepts: how a test
    /// knows a CLI subscriber or monitor is ready, since it prints nothing before its first
    /// message (a probe message would count towards its --count). Returns whether it was listed.
    func waitForPeer(where isPeer: (PeerInfo) -> Bool) async throws -> Bool {
        for _ in 0..<1000 {
            if try await peers().contains(where: isPeer) { return true }
            try await Task.sleep(for: .milliseconds(10))
        }
        return false
    }
}
