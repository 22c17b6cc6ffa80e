import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A copy of the `herald` executable that another user can run: W7 starts its flood as
/// `nobody`, who usually cannot reach a build directory. Made once per `herald bench` run
/// in a fresh 0755 directory under /tmp, and removed by ``removeAll()`` when the run ends.
enum ExecutableCopy {
    private static let made = Mutex<String?>(nil)

    /// The path of the copy of `executable`, making it on first use.
    static func shared(of executable: String) throws(BenchError) -> String {
        let result: Result<String, BenchError> = made.withLock { made in
            if let made { return .success(made) }
            let directory = "/tmp/herald-bench-\(getpid())"
            let copy = directory + "/herald"
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST, chmod(directory, 0o755) == 0 else {
                return .failure(BenchError("cannot create \(directory) (errno \(errno))"))
            }
            guard copyFile(executable, to: copy) else { return .failure(BenchError("cannot copy \(executable) to \(copy) (errno \(errno))")) }
            made = copy
            return .success(copy)
        }
        return try result.get()
    }

    /// Removes the copy, if one was made.
    static func removeAll() {
        made.withLock { made in
            guard let copy = made else { return }
            unlink(copy)
            rmdir(String(copy.dropLast("/herald".count)))
            made = nil
        }
    }

    private static func copyFile(_ source: String, to destination: String) -> Bool {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return false }
        defer { close(input) }
        let output = open(destination, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard output >= 0 else { return false }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count == 0 { return fchmod(output, 0o755) == 0 }
            if count < 0 { return false }
            let written = buffer.withUnsafeBytes { write(output, $0.baseAddress, count) }
            if written != count { return false }
        }
    }
}
