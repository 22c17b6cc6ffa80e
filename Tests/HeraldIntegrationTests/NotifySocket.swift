import CHeraldSys
import Foundation
import Synchronization

/// The listening end of the sd_notify protocol: a datagram socket on an abstract name, as
/// a service manager has. A thread of its own reads every notification as it arrives and
/// keeps them in order, and acts as the file-descriptor store: descriptors sent with
/// `FDSTORE=1` are kept under their `FDNAME=` (and `FDSTOREREMOVE=1` closes those of a
/// name), as systemd does.
///
/// It reads all the time, as systemd does, because a datagram socket that is not read
/// blocks its sender once a few notifications are queued (`net.unix.max_dgram_qlen`): a
/// broker sending watchdog pings would stall in sd_notify while a test was busy elsewhere.
final class NotifySocket: Sendable {
    let address: String
    private let state: Mutex<Received>
    private let stopping: Atomic<Bool>
    private let finished: Atomic<Bool>

    private struct Received: ~Copyable {
        var notifications: [String] = []
        var stored: [(name: String, fd: Int32)] = []
        /// The last marker of ``drain()`` read.
        var lastMarker = 0
    }

    /// What ``drain()`` sends itself; never kept as a notification.
    private static let markerPrefix = "HERALD_TEST_MARKER="
    private let markers = Atomic<Int>(0)

    init() throws {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let name = "herald-notify/\(getpid())/\(UUID().uuidString)"
        address = "@" + name
        let bound = name.withCString { herald_unix_bind(fd, $0, strlen($0), 1) }
        guard fd >= 0, bound == 0 else {
            if fd >= 0 { close(fd) }
            throw POSIXError(.EADDRINUSE)
        }
        state = Mutex(Received())
        stopping = Atomic(false)
        finished = Atomic(false)
        let thread = Thread { [unowned self] in
            while !self.stopping.load(ordering: .acquiring) { self.readOne(fd, timeoutMilliseconds: 50) }
            close(fd)
            self.state.withLock { for entry in $0.stored { close(entry.fd) } }
            self.finished.store(true, ordering: .releasing)
        }
        thread.stackSize = 1 << 20
        thread.start()
    }

    deinit {
        stopping.store(true, ordering: .releasing)
        // The reader uses `self` until it has closed everything (at most one poll timeout).
        while !finished.load(ordering: .acquiring) { usleep(1_000) }
    }

    /// Every notification read so far, one entry per datagram (lines joined with "\n").
    var received: [String] { state.withLock { $0.notifications } }

    /// The file-descriptor store: (name, descriptor) in the order they were stored. The
    /// descriptors stay the socket's; duplicate one to keep it.
    var stored: [(name: String, fd: Int32)] { state.withLock { $0.stored } }

    /// Returns once every notification sent before the call has been read: sends the socket
    /// a marker and waits until the reader has it (one receive queue, in order).
    func drain() {
        let marker = markers.add(1, ordering: .relaxed).newValue
        let sender = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(sender) }
        let name = String(address.dropFirst())
        let text = Self.markerPrefix + "\(marker)"
        guard name.withCString({ herald_unix_connect(sender, $0, strlen($0), 1) }) == 0,
            text.withCString({ send(sender, $0, strlen($0), 0) }) > 0
        else { return }
        let deadline = Date().addingTimeInterval(10)
        while state.withLock({ $0.lastMarker }) < marker && Date() < deadline { usleep(200) }
    }

    /// Duplicates of the descriptors in the store (the caller closes them), taken together
    /// so the reader cannot close one meanwhile.
    func duplicateStored() -> [(name: String, fd: Int32)] {
        state.withLock { state in state.stored.map { (name: $0.name, fd: fcntl($0.fd, F_DUPFD_CLOEXEC, 100)) } }
    }

    /// Notifications read so far.
    var count: Int { state.withLock { $0.notifications.count } }

    /// Every notification line read so far, in order.
    var lines: [String] { received.flatMap { $0.split(separator: "\n").map(String.init) } }

    /// Reads notifications until one says READY=1.
    func waitForReady(timeout: Double) async -> Bool {
        await waitFor(timeout: timeout) { $0.split(separator: "\n").contains("READY=1") }
    }

    /// Waits until a notification satisfies `predicate` (true), or `timeout` passes (false).
    /// Notifications already read count too (from the `from`th on), so a line is never missed.
    /// Polls without holding a thread (tests share a two-thread cooperative pool).
    func waitFor(timeout: Double, from start: Int = 0, _ predicate: (String) -> Bool) async -> Bool {
        var checked = start
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let notifications = received
            while checked < notifications.count {
                if predicate(notifications[checked]) { return true }
                checked += 1
            }
            guard Date() < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Reads one notification if one arrives within the timeout; keeps it, and applies what
    /// it says to the descriptor store.
    private func readOne(_ fd: Int32, timeoutMilliseconds: Int32) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeoutMilliseconds) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var passed = [Int32](repeating: -1, count: 16)
        var passedCount: Int32 = 0
        let n = herald_recv_with_fds(fd, &buffer, buffer.count, &passed, Int32(passed.count), &passedCount)
        guard n > 0 else { return }
        let message = String(decoding: buffer[..<n], as: UTF8.self)
        if message.hasPrefix(Self.markerPrefix) {
            let marker = Int(message.dropFirst(Self.markerPrefix.count)) ?? 0
            state.withLock { $0.lastMarker = max($0.lastMarker, marker) }
            return
        }
        let lines = message.split(separator: "\n").map(String.init)
        let name = lines.first { $0.hasPrefix("FDNAME=") }.map { String($0.dropFirst(7)) } ?? "stored"
        let descriptors = passed.prefix(Int(passedCount))
        state.withLock { state in
            state.notifications.append(message)
            if lines.contains("FDSTOREREMOVE=1") {
                for entry in state.stored where entry.name == name { close(entry.fd) }
                state.stored.removeAll { $0.name == name }
            }
            if lines.contains("FDSTORE=1") {
                state.stored += descriptors.map { (name: name, fd: $0) }
            } else {
                for descriptor in descriptors { close(descriptor) }
            }
        }
    }
}
