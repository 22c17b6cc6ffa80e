import CHeraldSys
import Foundation

/// A child started with `posix_spawn` and reaped with `waitpid`, its standard error in a log
/// file. For children that close descriptors they inherit (systemd-socket-activate closes all
/// but the ones it passes): Foundation's `Process` learns of an exit from a socket the child
/// inherits, and when that closes early it blocks in `wait4` for the child, so no other
/// `Process` in the test run is seen to exit until this one does.
///
/// Waits are `async` and poll without holding a thread (tests share a two-thread cooperative
/// pool). Killed (SIGKILL) and reaped at deinit if still running.
final class SpawnedProcess: @unchecked Sendable {
    let pid: pid_t
    let logPath: String
    private var status: Int32?

    /// Starts `executable` with `arguments` and `environment` (nil: this process's),
    /// standard output to /dev/null and standard error to a new log file. `fileActions` may
    /// add its own (descriptors to pass); every descriptor from `closeFrom` up is closed in
    /// the child.
    init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, closeFrom: Int32 = 3,
        fileActions: (inout posix_spawn_file_actions_t) -> Void = { _ in }
    ) throws {
        logPath = FileManager.default.temporaryDirectory.appendingPathComponent("herald-spawned-\(getpid())-\(UUID().uuidString).log").path
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard logFD >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(logFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        fileActions(&actions)
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Nothing else of this test process leaks into the child (pipes of other tests'
        // processes among them: a leaked write end would keep their readers from seeing EOF).
        _ = herald_spawn_close_from(&actions, closeFrom)
        let environment = environment ?? ProcessInfo.processInfo.environment
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings([executable] + arguments) { argv in
            withCStrings(envp) { envp in posix_spawn(&pid, executable, &actions, nil, argv, envp) }
        }
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        self.pid = pid
    }

    deinit {
        if reap() == nil {
            kill(pid, SIGKILL)
            var raw: Int32 = 0
            waitpid(pid, &raw, 0)
        }
        try? FileManager.default.removeItem(atPath: logPath)
    }

    /// What the child wrote to standard error so far.
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The exit status if the child has exited (collecting it once), else nil: its exit
    /// code, or 128 + the signal that ended it, as a shell reports it.
    func reap() -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        guard waitpid(pid, &raw, WNOHANG) == pid else { return nil }
        let signal = raw & 0x7F
        status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
        return status
    }

    /// Waits (bounded) for the exit status; nil if the child is still running.
    func waitForExit(timeout: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let status = reap() { return status }
            guard Date() < deadline else { return nil }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Sends `signal` and waits (bounded) for the exit status.
    func stop(signal: Int32 = SIGTERM, timeout: Double = 15) async -> Int32? {
        if reap() == nil { kill(pid, signal) }
        return await waitForExit(timeout: timeout)
    }

    /// Waits (bounded) until the log satisfies `predicate`; false if the child exits or time runs out first.
    func waitForLog(timeout: Double = 20, _ predicate: (String) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if predicate(log) { return true }
            if reap() != nil { return predicate(log) }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return false
    }
}

/// Calls `body` with a NULL-terminated C array of `strings` (valid during the call).
func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
