import CHeraldSys
import Foundation

/// The listening end of the sd_notify protocol: a datagram socket on an abstract name, as
/// a service manager has. Keeps every notification it reads, in order.
final class NotifySocket: @unchecked Sendable {
    let fd: Int32
    let address: String
    /// Every notification read so far, one entry per datagram (lines joined with "\n").
    private(set) var received: [String] = []

    init() throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let name = "herald-notify/\(getpid())/\(UUID().uuidString)"
        address = "@" + name
        let bound = name.withCString { herald_unix_bind(fd, $0, strlen($0), 1) }
        guard fd >= 0, bound == 0 else { throw POSIXError(.EADDRINUSE) }
    }

    deinit { close(fd) }

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

    private func readOne(timeout: Double) {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(1, timeout * 1000))) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buffer, buffer.count, 0)
        if n > 0 { received.append(String(decoding: buffer[..<n], as: UTF8.self)) }
    }
}
