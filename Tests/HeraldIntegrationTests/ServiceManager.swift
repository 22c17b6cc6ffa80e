import CHeraldSys
import Foundation

/// The part of a service manager the activation tests need: it owns a listening socket for
/// the whole test and starts heraldd instances with that socket as descriptor 3
/// (`LISTEN_FDS=1`, `LISTEN_PID` the child's own pid, `LISTEN_FDNAMES`), a NOTIFY_SOCKET, and
/// optionally a watchdog; it can kill them any way and start the next one. Each instance's
/// standard error goes to a log file. Every instance still running is killed at deinit.
final class ServiceManager: @unchecked Sendable {
    /// The service's address, e.g. `@herald-test/…/activation`.
    let address: String
    /// The listening socket the manager keeps across instances.
    let listener: Int32
    let notify: NotifySocket
    private(set) var instances: [Instance] = []

    /// One heraldd started by the manager.
    final class Instance: @unchecked Sendable {
        let pid: pid_t
        let logPath: String
        private(set) var status: Int32?

        init(pid: pid_t, logPath: String) {
            self.pid = pid
            self.logPath = logPath
        }

        var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

        /// Waits (bounded) for the exit status; nil if it is still running.
        func waitForExit(timeout: Double) -> Int32? {
            if let status { return status }
            let deadline = Date().addingTimeInterval(timeout)
            repeat {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid {
                    // Exit status, or 128 + the signal, as a shell reports it.
                    let signal = raw & 0x7F
                    status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
                    return status
                }
                usleep(5_000)
            } while Date() < deadline
            return nil
        }

        /// Sends `signal` and waits (bounded) for the exit status.
        func stop(signal: Int32 = SIGTERM, timeout: Double = 15) -> Int32? {
            kill(pid, signal)
            return waitForExit(timeout: timeout)
        }
    }

    init(purpose: String) throws {
        address = TestEnvironment.uniqueAddress(purpose)
        notify = try NotifySocket()
        listener = herald_unix_stream_socket(0)
        let name = String(address.dropFirst())
        guard listener >= 0, name.withCString({ herald_unix_bind(listener, $0, strlen($0), 1) }) == 0,
            Glibc.listen(listener, 128) == 0
        else { throw POSIXError(.EADDRINUSE) }
    }

    deinit {
        for instance in instances where instance.waitForExit(timeout: 0) == nil {
            _ = instance.stop(signal: SIGKILL, timeout: 5)
        }
        close(listener)
        for instance in instances { try? FileManager.default.removeItem(atPath: instance.logPath) }
    }

    /// Starts heraldd with the manager's socket as fd 3 and `arguments`. With `passing`, that
    /// descriptor is passed as fd 3 instead (to test refusals). Does not wait for READY=1.
    @discardableResult
    func start(_ arguments: [String] = [], environment extra: [String: String] = [:], passing fd: Int32? = nil) throws -> Instance {
        let logPath = FileManager.default.temporaryDirectory.appendingPathComponent("heraldd-sm-\(getpid())-\(UUID().uuidString).log").path
        let logFD = open(logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(logFD) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 onto itself would keep close-on-exec: pass a duplicate if the socket is fd 3 here.
        let source = fd ?? listener
        let passed = source == 3 ? fcntl(source, F_DUPFD_CLOEXEC, 10) : source
        defer { if passed != source { close(passed) } }
        posix_spawn_file_actions_adddup2(&actions, passed, 3)
        // What the previous instances left in the descriptor store follows, as systemd passes it.
        notify.drain()
        let stored = notify.stored
        // Copies above every target number, so no dup2 overwrites a source still to come.
        let sources = stored.map { fcntl($0.fd, F_DUPFD_CLOEXEC, 100) }
        defer { for source in sources { close(source) } }
        for (offset, source) in sources.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(4 + offset)) }
        posix_spawn_file_actions_adddup2(&actions, logFD, 2)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        // Nothing else of this test process leaks into the broker (pipes of other tests'
        // processes among them: a leaked write end would keep their readers from seeing EOF).
        _ = herald_spawn_close_from(&actions, Int32(4 + stored.count))
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_ADDRESS"] = nil
        environment["LISTEN_FDS"] = "\(1 + stored.count)"
        environment["LISTEN_FDNAMES"] = (["herald"] + stored.map(\.name)).joined(separator: ":")
        // The unit has a descriptor store (FileDescriptorStoreMax=), as systemd 254+ says.
        environment["FDSTORE"] = "4"
        environment["NOTIFY_SOCKET"] = notify.address
        environment.merge(extra) { _, new in new }
        // LISTEN_PID must be heraldd's pid: the shell sets it to its own and execs heraldd.
        let argv = ["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", TestEnvironment.heralddPath, "--log-level", "info"] + arguments
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let result = withCStrings(argv) { argvPointers in
            withCStrings(envp) { envpPointers in
                posix_spawn(&pid, "/bin/sh", &actions, nil, argvPointers, envpPointers)
            }
        }
        guard result == 0 else { throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO) }
        let instance = Instance(pid: pid, logPath: logPath)
        instances.append(instance)
        return instance
    }
}

/// Calls `body` with a NULL-terminated C array of `strings` (valid during the call).
private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    var pointers = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return body(pointers)
}
