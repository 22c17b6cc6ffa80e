import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald sub --save-dir DIR`: writes the payloads that came as sealed memfds, and memfds
/// passed as descriptors, to files in DIR (`N-TOPIC.bin`, `N-TOPIC.fdK.bin`, with N the
/// message's number and the topic's '/' as '_'), so a large payload can be looked at
/// without printing it.
struct PayloadSaver {
    let directory: String

    /// Saves what `message` carries; returns the paths written (and the problem for each
    /// that could not be), in order: the payload, then each memfd descriptor.
    func save(_ message: Message, number: Int) -> [String] {
        let stem = directory + "/\(number)-" + String(message.topic.map { $0 == "/" ? "_" : $0 })
        var saved: [String] = []
        if message.isMappedPayload {
            saved.append(message.withPayloadBytes { write($0, to: stem + ".bin") })
        }
        for (index, descriptor) in message.fileDescriptors.enumerated() where DescriptorDescription(descriptor).kind == "memfd" {
            saved.append(copy(descriptor, to: stem + ".fd\(index).bin"))
        }
        return saved
    }

    private func write(_ bytes: UnsafeRawBufferPointer, to path: String) -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        return Output(fd: fd).write(bytes) ? path : "\(path): \(String(cString: strerror(errno)))"
    }

    /// Copies a memfd from offset 0 (pread: the sender's writes moved the shared offset).
    private func copy(_ descriptor: FileDescriptor, to path: String) -> String {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { pread(descriptor.rawValue, $0.baseAddress, $0.count, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { return "\(path): \(String(cString: strerror(errno)))" }
            if n == 0 { return path }
            guard chunk.withUnsafeBytes({ Output(fd: fd).write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) else {
                return "\(path): \(String(cString: strerror(errno)))"
            }
            offset += n
        }
    }
}
