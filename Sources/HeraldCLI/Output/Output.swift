#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to a file descriptor, whole lines at a time.
struct Output {
    let fd: Int32

    /// Writes all of `bytes`, retrying after EINTR and partial writes. Returns false if the
    /// descriptor failed (the reader is gone).
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Writes `text`; false if the descriptor failed.
    @discardableResult
    func write(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }
}
