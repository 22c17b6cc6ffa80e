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
    typealias Instance = SpawnedProcess

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
        // Each instance is killed and reaped when it goes away.
        close(listener)
    }

    /// Starts heraldd with the manager's socket as fd 3 and `arguments`. With `passing`, that
    /// descriptor is passed as fd 3 instead (to test refusals). Does not wait for READY=1.
    @discardableResult
    func start(_ arguments: [String] = [], environment extra: [String: String] = [:], passing fd: Int32? = nil) throws -> Instance {
        // dup2 onto itself would keep close-on-exec: pass a duplicate if the socket is fd 3 here.
        let source = fd ?? listener
        let passed = source == 3 ? fcntl(source, F_DUPFD_CLOEXEC, 10) : source
        defer { if passed != source { close(passed) } }
        // What the previous instances left in the descriptor store follows, as systemd passes it.
        notify.drain()
        // Copies above every target number, so no dup2 overwrites a source still to come.
        let stored = notify.duplicateStored()
        let sources = stored.map(\.fd)
        defer { for source in sources { close(source) } }
        var environment = ProcessInfo.processInfo.environment
        environment["HERALD_ADDRESS"] = nil
        environment["LISTEN_FDS"] = "\(1 + stored.count)"
        environment["LISTEN_FDNAMES"] = (["herald"] + stored.map(\.name)).joined(separator: ":")
        // The unit has a descriptor store (FileDescriptorStoreMax=), as systemd 254+ says.
        environment["FDSTORE"] = "4"
        environment["NOTIFY_SOCKET"] = notify.address
        environment.merge(extra) { _, new in new }
        // LISTEN_PID must be heraldd's pid: the shell sets it to its own and execs heraldd.
        let instance = try SpawnedProcess(
            "/bin/sh", ["-c", "LISTEN_PID=$$ exec \"$0\" \"$@\"", TestEnvironment.heralddPath, "--log-level", "info"] + arguments,
            environment: environment, closeFrom: Int32(4 + stored.count)
        ) { actions in
            posix_spawn_file_actions_adddup2(&actions, passed, 3)
            for (offset, source) in sources.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(4 + offset)) }
        }
        instances.append(instance)
        return instance
    }
}
