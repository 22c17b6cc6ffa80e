import CSystemd
import HeraldCore
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// What heraldd tells its service manager, through libsystemd's `sd_notify`: READY=1 once
/// every listener is live, a short STATUS= kept current (at most once a second), WATCHDOG=1
/// at half of `WATCHDOG_USEC` from the event loop itself (a wedged loop stops pinging),
/// RELOADING=1 and READY=1 around SIGHUP, and STOPPING=1. Without `NOTIFY_SOCKET` every
/// call is a cheap no-op.
final class ServiceNotifier {
    private let logger: Logger
    /// Half the watchdog timeout, in seconds; nil when the service manager set no watchdog.
    let watchdogInterval: Double?
    private var lastStatus = ""
    private var lastStatusAt = -Double.infinity
    private var lastWatchdogAt = -Double.infinity
    /// Longest a STATUS= line may be stale; also the shortest time between two of them.
    static let statusInterval = 1.0

    init(logger: Logger) {
        self.logger = logger
        var microseconds: UInt64 = 0
        watchdogInterval = sd_watchdog_enabled(0, &microseconds) > 0 && microseconds > 0 ? Double(microseconds) / 2e6 : nil
    }

    /// How many descriptors the unit's file-descriptor store holds (`$FDSTORE`, set by
    /// systemd 254 and later when `FileDescriptorStoreMax=` is not 0); 0 if it says nothing.
    static var descriptorStoreSize: Int { getenv("FDSTORE").flatMap { Int(String(cString: $0)) } ?? 0 }

    /// How often the event loop must call ``tick(now:statistics:)``.
    var tickInterval: Double { min(ServiceNotifier.statusInterval, watchdogInterval ?? .infinity) }

    /// Every listener is live.
    func ready(listening: String) {
        send("READY=1\nSTATUS=listening on \(listening)")
        if let watchdogInterval { logger.info("systemd watchdog enabled", metadata: ["ping_every": "\(watchdogInterval)s"]) }
    }

    /// Called from the event loop: pings the watchdog when due and refreshes STATUS=.
    func tick(now: Double, statistics: BrokerStatistics) {
        var message = ""
        if let watchdogInterval, now - lastWatchdogAt >= watchdogInterval * 0.9 {
            message += "WATCHDOG=1\n"
            lastWatchdogAt = now
        }
        if now - lastStatusAt >= ServiceNotifier.statusInterval {
            let status = "\(statistics.connectionsOpen) peers, \(statistics.messagesPublished) messages published, "
                + "\(statistics.messagesDelivered) delivered, \(statistics.messagesDropped) dropped"
            if status != lastStatus {
                message += "STATUS=\(status)\n"
                lastStatus = status
            }
            lastStatusAt = now
        }
        if !message.isEmpty { send(message) }
    }

    /// SIGHUP: RELOADING=1 (with the monotonic time systemd wants), `work`, then READY=1.
    func reload(_ work: () -> Void) {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(microseconds)\nSTATUS=reloading")
        work()
        send("READY=1\nSTATUS=\(lastStatus)")
    }

    /// Shutdown began.
    func stopping() {
        send("STOPPING=1\nSTATUS=stopping")
    }

    /// Hands `fd` to the service manager's file-descriptor store under `name` (FDSTORE=1),
    /// replacing what is stored under that name: it comes back in `LISTEN_FDS` when the
    /// service starts again. Needs `FileDescriptorStoreMax=` in the unit. Returns false if
    /// it could not be sent (no service manager, or an error).
    func store(_ fd: Int32, name: String) -> Bool {
        send("FDSTOREREMOVE=1\nFDNAME=\(name)")
        var descriptor = fd
        let result = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=\(name)", &descriptor, 1)
        if result < 0 {
            logger.warning("cannot hand a descriptor to the service manager", metadata: ["name": "\(name)", "error": "\(String(cString: strerror(-result)))"])
        }
        return result > 0
    }

    private func send(_ state: String) {
        _ = sd_notify(0, state)
    }
}
