import CHeraldSys
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// What a received file descriptor is, for `herald sub`: its kind (from fstat, and
/// /proc/self/fd for memfds, which are regular files to fstat) and, for files, its size.
struct DescriptorDescription {
    /// pipe, socket, memfd, file, directory, character device, block device or unknown.
    var kind: String
    /// Bytes, for memfds and regular files.
    var size: Int?
    /// Whether a memfd is sealed against writing, growing and shrinking.
    var sealed = false

    init(_ descriptor: FileDescriptor) {
        var status = stat()
        guard fstat(descriptor.rawValue, &status) == 0 else {
            kind = "unknown (\(String(cString: strerror(errno))))"
            return
        }
        switch status.st_mode & S_IFMT {
        case S_IFIFO: kind = "pipe"
        case S_IFSOCK: kind = "socket"
        case S_IFDIR: kind = "directory"
        case S_IFCHR: kind = "character device"
        case S_IFBLK: kind = "block device"
        case S_IFREG:
            let memfd = Self.isMemfd(descriptor)
            kind = memfd ? "memfd" : "file"
            size = Int(status.st_size)
            sealed = memfd && herald_memfd_is_sealed(descriptor.rawValue) == 1
        default: kind = "unknown"
        }
    }

    /// "memfd 4096 B (sealed)", "pipe", …
    var text: String {
        var text = kind
        if let size { text += " \(size) B" }
        if sealed { text += " (sealed)" }
        return text
    }

    /// {"type":"memfd","size":4096,"sealed":true}
    var json: String {
        var json = "{\"type\":\"\(kind)\""
        if let size { json += ",\"size\":\(size)" }
        if kind == "memfd" { json += ",\"sealed\":\(sealed)" }
        return json + "}"
    }

    /// Whether /proc/self/fd names it as a memfd ("/memfd:NAME (deleted)").
    private static func isMemfd(_ descriptor: FileDescriptor) -> Bool {
        var target = [CChar](repeating: 0, count: 256)
        let n = readlink("/proc/self/fd/\(descriptor.rawValue)", &target, target.count - 1)
        guard n > 0 else { return false }
        return String(decoding: target[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self).hasPrefix("/memfd:")
    }
}
