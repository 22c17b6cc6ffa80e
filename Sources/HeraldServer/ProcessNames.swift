#if canImport(Glibc)
import Glibc
#endif

/// The names of peer processes, for introspection (`herald peers`): `/proc/<pid>/comm`,
/// read with plain system calls on the loop thread (a few hundred bytes, only when asked).
enum ProcessNames {
    /// The `comm` of process `pid` (at most 15 bytes), or nil if it cannot be read (the
    /// process is gone, or /proc is not mounted).
    @Sendable static func comm(_ pid: UInt32) -> String? {
        guard pid > 0 else { return nil }
        let fd = open("/proc/\(pid)/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return nil }
        var name = bytes[..<count]
        while let last = name.last, last == UInt8(ascii: "\n") || last == 0 { name = name.dropLast() }
        return String(decoding: name, as: UTF8.self)
    }
}
