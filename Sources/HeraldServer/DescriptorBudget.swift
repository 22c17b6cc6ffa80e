#if canImport(Glibc)
import Glibc
#endif

/// How many connections the broker's file-descriptor limit allows.
///
/// systemd starts services with a soft limit of 1024 and a much higher hard limit; a broker
/// that kept 1024 would run out of descriptors long before its connection limit. So heraldd
/// raises the soft limit to the hard one at start-up, and caps its connection count at what
/// that limit leaves after ``reserve``: the broker then refuses a connection with a clear
/// `too_many_connections` instead of meeting EMFILE.
public enum DescriptorBudget {
    /// Descriptors kept for everything that is not a client connection: standard streams,
    /// the epoll instance, the signalfd, the reserve descriptor for refusing at EMFILE,
    /// listening sockets, sd_notify and logging, with headroom for descriptors later
    /// features open (passed file descriptors, a metrics socket).
    public static let reserve = 64

    /// The process's descriptor limit after ``raiseSoftLimit()``.
    public struct Limit: Sendable, Equatable {
        /// The soft limit in force.
        public var soft: Int
        /// The hard limit.
        public var hard: Int
        /// The soft limit before it was raised (equal to `soft` if it was not).
        public var softBefore: Int
    }

    /// Raises the soft RLIMIT_NOFILE to the hard limit (or to the kernel's `nr_open` when the
    /// hard limit is unlimited). Returns the limits before and after; nil if they cannot be read.
    public static func raiseSoftLimit() -> Limit? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let before = Int(clamping: limit.rlim_cur)
        var target = limit.rlim_max
        if target == rlim_t.max { target = rlim_t(kernelDescriptorCeiling()) }  // RLIM_INFINITY
        if target > limit.rlim_cur {
            var raised = limit
            raised.rlim_cur = target
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Limit(soft: Int(clamping: limit.rlim_cur), hard: Int(clamping: limit.rlim_max), softBefore: before)
    }

    /// Descriptors one connection holds: its socket and a pidfd for the process that
    /// connected (see ``EpollServer``'s process watch).
    public static let perConnection = 2

    /// The most connections a soft limit of `descriptors` leaves room for.
    public static func maxConnections(forDescriptorLimit descriptors: Int) -> Int {
        max(1, (descriptors - reserve) / perConnection)
    }

    /// How a soft limit of `descriptors` is shared between connections and the file
    /// descriptors clients pass through the broker (PROTOCOL.md §4.22), which it holds until
    /// their receivers are written: passed descriptors get at most a quarter of what the
    /// reserve leaves (and no more than `heldRequested`), connections the rest.
    public static func split(descriptorLimit descriptors: Int, heldRequested: Int) -> (maxConnections: Int, maxHeld: Int) {
        let available = max(0, descriptors - reserve)
        let held = min(heldRequested, available / 4)
        return (max(1, (available - held) / perConnection), held)
    }

    /// `/proc/sys/fs/nr_open`: the most descriptors one process may have (1,048,576 by default).
    private static func kernelDescriptorCeiling() -> Int {
        let fallback = 1 << 20
        let fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return fallback }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 32)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return fallback }
        let text = String(decoding: bytes[..<count].prefix { $0 >= 0x30 && $0 <= 0x39 }, as: UTF8.self)
        return Int(text).flatMap { $0 > 0 ? $0 : nil } ?? fallback
    }
}
