import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process of `herald bench` (a worker or a private heraldd), started with
/// posix_spawn, optionally with pipes to its stdin and from its stdout.
final class ChildProcess {
    let pid: pid_t
    /// Write end of the child's stdin, or -1.
    private(set) var input: Int32
    /// Non-blocking read end of the child's stdout, or -1.
    private(set) var output: Int32
    private(set) var exitStatus: Int32?

    private init(pid: pid_t, input: Int32, output: Int32) {
        self.pid = pid
        self.input = input
        self.output = output
    }

    deinit {
        closeInput()
        closeOutput()
    }

    /// Starts `path` with `arguments` (argv[0] is `path`). With `pipes`, the child's stdin
    /// and stdout are pipes to this process; otherwise it inherits them. stderr is inherited.
    /// With `scheduling`, the child starts with that policy instead of inheriting this one's.
    static func spawn(
        _ path: String, _ arguments: [String], pipes: Bool, scheduling: ChildScheduling? = nil
    ) throws(BenchError) -> ChildProcess {
        var toChild: [Int32] = [-1, -1]
        var fromChild: [Int32] = [-1, -1]
        if pipes {
            // pipe2 is a GNU name Swift's Glibc module leaves out; only this thread spawns,
            // so setting FD_CLOEXEC right after pipe() races with nothing.
            guard pipe(&toChild) == 0 else { throw BenchError("pipe failed (errno \(errno))") }
            guard pipe(&fromChild) == 0 else {
                close(toChild[0])
                close(toChild[1])
                throw BenchError("pipe failed (errno \(errno))")
            }
            for fd in toChild + fromChild { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if pipes {
            // dup2 clears O_CLOEXEC on the copies; every other pipe end closes on exec.
            posix_spawn_file_actions_adddup2(&actions, toChild[0], 0)
            posix_spawn_file_actions_adddup2(&actions, fromChild[1], 1)
        }
        // The parent ignores SIGPIPE and handles SIGINT/SIGTERM itself; children start with
        // the default actions (heraldd must stop on SIGTERM) and nothing blocked.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if let scheduling {
            scheduling.apply(to: &attributes)
            flags |= POSIX_SPAWN_SETSCHEDULER
        }
        posix_spawnattr_setflags(&attributes, Int16(flags))

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        if pipes {
            close(toChild[0])
            close(fromChild[1])
        }
        guard rc == 0 else {
            if pipes {
                close(toChild[1])
                close(fromChild[0])
            }
            if rc == EPERM && scheduling != nil {
                throw BenchError("cannot start \(path) with a real-time policy: not permitted (W7's isolated scheduling needs root or CAP_SYS_NICE)")
            }
            throw BenchError("cannot start \(path): \(String(cString: strerror(rc)))")
        }
        if pipes { _ = fcntl(fromChild[0], F_SETFL, fcntl(fromChild[0], F_GETFL) | O_NONBLOCK) }
        ChildRegistry.add(pid)
        return ChildProcess(pid: pid, input: pipes ? toChild[1] : -1, output: pipes ? fromChild[0] : -1)
    }

    /// Writes `line` to the child's stdin; false if it is gone.
    @discardableResult
    func send(_ line: String) -> Bool {
        guard input >= 0 else { return false }
        return Output(fd: input).write(line)
    }

    /// Reads what the child's stdout holds. nil at end of file; empty if nothing is there yet.
    func readAvailable() -> [UInt8]? {
        guard output >= 0 else { return nil }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(output, $0.baseAddress, $0.count) }
            if n > 0 {
                bytes.append(contentsOf: chunk[..<n])
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n == 0 && bytes.isEmpty { return nil }
            return bytes
        }
    }

    func closeInput() {
        if input >= 0 { close(input) }
        input = -1
    }

    func closeOutput() {
        if output >= 0 { close(output) }
        output = -1
    }

    /// Sends `signal` unless the child has been reaped (its pid may belong to someone else then).
    func kill(_ signal: Int32) {
        guard exitStatus == nil else { return }
        _ = Glibc.kill(pid, signal)
    }

    /// Reaps the child if it has exited; returns its wait status then.
    @discardableResult
    func poll() -> Int32? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let rc = waitpid(pid, &status, WNOHANG)
        if rc == pid {
            exitStatus = status
            ChildRegistry.remove(pid)
        }
        return exitStatus
    }

    /// Waits up to `timeout` for the child to exit, then kills it. Returns its wait status.
    @discardableResult
    func finish(within timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while poll() == nil && ContinuousClock.now < deadline { usleep(5_000) }
        if poll() == nil {
            kill(SIGKILL)
            var status: Int32 = 0
            if waitpid(pid, &status, 0) == pid { exitStatus = status }
            ChildRegistry.remove(pid)
        }
        return exitStatus
    }
}

/// Every child still running, so an interrupted `herald bench` can end them by pid.
enum ChildRegistry {
    private static let pids = Mutex<Set<pid_t>>([])

    static func add(_ pid: pid_t) { pids.withLock { _ = $0.insert(pid) } }
    static func remove(_ pid: pid_t) { pids.withLock { _ = $0.remove(pid) } }

    /// Sends SIGKILL to every child still running (when `herald bench` itself is interrupted:
    /// a private broker holds no state worth a clean stop, and its abstract socket vanishes with it).
    static func killAll() {
        let children = pids.withLock { $0 }
        for pid in children { _ = kill(pid, SIGKILL) }
        // Reap them, so none is left a zombie after we exit.
        for pid in children { _ = waitpid(pid, nil, 0) }
    }
}
