#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to a file descriptor, whole lines at a time.
struct Output {
    let fd: Int32

    /// Writes all of `bytes`, retrying after EINTR and partial writes.
    func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }

    /// Writes `text`.
    func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }
}
