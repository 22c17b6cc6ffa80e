#if canImport(Glibc)
import Glibc
#endif

/// How W7 asks the kernel to schedule its processes.
///
/// On a machine with fewer cores than busy processes, the flood's own processes (flooder,
/// its subscriber, the broker serving them) take CPU time from the round-trip user's
/// processes whatever the broker does: the round trip then waits for a CPU, not for the
/// broker. `isolated` takes that out of the measurement, so that what remains is the
/// broker's own share of the delay (its per-wakeup budgets).
enum FairnessScheduling: String, CaseIterable, Sendable {
    /// Every process at the default policy, in one CPU group: what a machine without
    /// per-user CPU accounting does.
    case shared
    /// The broker and the round-trip user's two processes run `SCHED_FIFO`; the flood runs
    /// at the default policy. Needs root (or CAP_SYS_NICE) and `--spawn-broker`.
    case isolated
}

/// A scheduling policy a child process starts with (posix_spawn's POSIX_SPAWN_SETSCHEDULER),
/// instead of inheriting this process's.
struct ChildScheduling: Sendable, Equatable {
    let policy: Int32
    let priority: Int32

    /// The default time-sharing policy.
    static let standard = ChildScheduling(policy: SCHED_OTHER, priority: 0)
    /// A low real-time priority: above every time-sharing process, below the kernel's own
    /// real-time threads. The kernel's real-time throttling (95 % of each second by default)
    /// still leaves time to everything else.
    static let realTime = ChildScheduling(policy: SCHED_FIFO, priority: 10)

    /// Applies this to spawn attributes; the caller adds POSIX_SPAWN_SETSCHEDULER to the flags.
    func apply(to attributes: inout posix_spawnattr_t) {
        var parameter = sched_param()
        parameter.sched_priority = priority
        posix_spawnattr_setschedpolicy(&attributes, policy)
        posix_spawnattr_setschedparam(&attributes, &parameter)
    }
}
