import Foundation

/// Where the built products live and how to make names no other test uses.
enum TestEnvironment {
    /// The build products directory: the test bundle sits next to `heraldd` and `herald`.
    static let productsDirectory: URL = {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // On Linux the bundle is `<products>/HeraldPackageTests.xctest` (a file); be lenient.
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("heraldd").path),
            directory.path != "/"
        {
            directory = directory.deletingLastPathComponent()
        }
        return directory
    }()

    static var heralddPath: String { productsDirectory.appendingPathComponent("heraldd").path }
    static var heraldPath: String { productsDirectory.appendingPathComponent("herald").path }

    private static let counter = Counter()

    /// An abstract socket name unique to this test process and call.
    static func uniqueAddress(_ purpose: String) -> String {
        "@herald-test/\(getpid())/\(counter.next())/\(purpose)"
    }

    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            lock.lock()
            defer { lock.unlock() }
            value += 1
            return value
        }
    }
}

/// Facts about a running process, read from /proc.
enum ProcessInspector {
    /// Open file descriptors of `pid`.
    static func openFileDescriptors(_ pid: Int32) -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").count) ?? -1
    }

    /// User plus system CPU time `pid` has used, in seconds (from /proc/<pid>/stat).
    static func cpuSeconds(_ pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let end = stat.lastIndex(of: ")")
        else { return -1 }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return -1 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident set size of `pid` in bytes.
    static func residentBytes(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return -1 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? -1
            return kilobytes * 1024
        }
        return -1
    }
}
