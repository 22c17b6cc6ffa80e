#if canImport(Glibc)
import Glibc
#endif

// Small system helpers for `herald bench`: clocks, CPU time, /proc files, threads.

/// CLOCK_MONOTONIC in nanoseconds. Every bench timestamp uses it, in every process, so a
/// publisher's send time and a subscriber's receive time are on one time line.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// Seconds between two ``monotonicNanos()`` readings (0 if `end` is not after `start`).
func secondsBetween(_ start: UInt64, _ end: UInt64) -> Double {
    end > start ? Double(end - start) / 1e9 : 0
}

/// User plus system CPU seconds of this whole process: every thread, the bus I/O threads included.
func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return cpuSeconds(usage)
}

/// User plus system CPU seconds of the calling thread.
func threadCPUSeconds() -> Double {
    var usage = rusage()
    // RUSAGE_THREAD (Linux, 1): Swift's Glibc module leaves out the _GNU_SOURCE names.
    getrusage(1, &usage)
    return cpuSeconds(usage)
}

private func cpuSeconds(_ usage: rusage) -> Double {
    Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
        + Double(usage.ru_stime.tv_usec) / 1e6
}

/// The bytes of a small file (those under /proc), or nil if it cannot be read.
func readSmallFile(_ path: String, limit: Int = 1 << 20) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 << 10)
    while bytes.count < limit {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes.append(contentsOf: chunk[..<n])
    }
    return bytes
}

/// The text of a small file, or nil.
func readSmallTextFile(_ path: String) -> String? {
    readSmallFile(path).map { String(decoding: $0, as: UTF8.self) }
}

/// The real path of the running executable (what `/proc/self/exe` points to).
func currentExecutablePath() -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard n > 0 else { return "/proc/self/exe" }
    return String(decoding: buffer[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Runs `body` on a new detached thread, for blocking I/O that must not hold a thread of
/// the Swift concurrency pool (the pool has one thread per core, two here).
func startThread(_ body: @escaping @Sendable () -> Void) {
    final class Start {
        let body: @Sendable () -> Void
        init(body: @escaping @Sendable () -> Void) {
            self.body = body
        }
    }
    let start = Unmanaged.passRetained(Start(body: body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { raw in
            Unmanaged<Start>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, start)
    guard rc == 0 else {
        Unmanaged<Start>.fromOpaque(start).release()
        fatalError("herald bench: cannot start a thread: error \(rc)")
    }
    pthread_detach(thread)
}
