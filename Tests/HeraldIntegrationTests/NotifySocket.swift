import CHeraldSys
import Foundation

/// The listening end of the sd_notify protocol: a datagram socket on an abstract name, as
/// a service manager has. Keeps every notification it reads, in order, and acts as the
/// file-descriptor store: descriptors sent with `FDSTORE=1` are kept under their `FDNAME=`
/// (and `FDSTOREREMOVE=1` closes those of a name), as systemd does.
final class NotifySocket: @unchecked Sendable {
    let fd: Int32
    let address: String
    /// Every notification read so far, one entry per datagram (lines joined with "\n").
    private(set) var received: [String] = []
    /// The file-descriptor store: (name, descriptor) in the order they were stored.
    private(set) var stored: [(name: String, fd: Int32)] = []

    init() throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let name = "herald-notify/\(getpid())/\(UUID().uuidString)"
        address = "@" + name
        let bound = name.withCString { herald_unix_bind(fd, $0, strlen($0), 1) }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    deinit {
        close(fd)
        for entry in stored { close(entry.fd) }
    }

    /// Reads every notification already waiting, without blocking.
    func drain() {
        while readOne(timeout: 0) {}
    }

    /// Reads notifications until one says READY=1.
    func waitForReady(timeout: Double) -> Bool {
        waitFor(timeout: timeout) { $0.split(separator: "\n").contains("READY=1") }
    }

    /// Reads notifications until one satisfies `predicate` (true), or `timeout` passes (false).
    /// Notifications already read count too (from the `from`th on), so a line is never missed.
    func waitFor(timeout: Double, from start: Int = 0, _ predicate: (String) -> Bool) -> Bool {
        var checked = start
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while checked < received.count {
                if predicate(received[checked]) { return true }
                checked += 1
            }
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { return false }
            readOne(timeout: remaining)
        }
    }

    /// Reads what arrives within `seconds`.
    func collect(for seconds: Double) {
        let deadline = Date().addingTimeInterval(seconds)
        while deadline.timeIntervalSinceNow > 0 { readOne(timeout: deadline.timeIntervalSinceNow) }
    }

    /// Notifications read so far.
    var count: Int { received.count }

    /// Every notification line read so far, in order.
    var lines: [String] { received.flatMap { $0.split(separator: "\n").map(String.init) } }

    /// Reads one notification if one arrives within `timeout`; false if none did.
    @discardableResult
    private func readOne(timeout: Double) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, timeout <= 0 ? 0 : Int32(max(1, timeout * 1000))) > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 4096)
        var passed = [Int32](repeating: -1, count: 16)
        var passedCount: Int32 = 0
        let n = herald_recv_with_fds(fd, &buffer, buffer.count, &passed, Int32(passed.count), &passedCount)
        guard n > 0 else { return n == 0 }
        let message = String(decoding: buffer[..<n], as: UTF8.self)
        received.append(message)
        let lines = message.split(separator: "\n").map(String.init)
        let name = lines.first { $0.hasPrefix("FDNAME=") }.map { String($0.dropFirst(7)) } ?? "stored"
        if lines.contains("FDSTOREREMOVE=1") {
            for entry in stored where entry.name == name { close(entry.fd) }
            stored.removeAll { $0.name == name }
        }
        let descriptors = passed.prefix(Int(passedCount))
        if lines.contains("FDSTORE=1") {
            stored += descriptors.map { (name: name, fd: $0) }
        } else {
            for descriptor in descriptors { close(descriptor) }
        }
        return true
    }
}
