import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Encoded frames waiting to be written: a growable byte buffer whose PUBLISH append is one
/// capacity check and two `memcpy`s (the publish hot path; unsafe, fenced in this type),
/// and the descriptors that frames passing them send with their first byte (``marks``).
///
/// A buffer is owned by one side at a time, never shared: the publishers fill one under the
/// connection's `out` lock while the I/O thread writes the other, and the I/O thread swaps
/// them under that lock. That hand-over is the synchronization, hence `@unchecked Sendable`.
final class OutgoingBuffer: @unchecked Sendable {
    /// Owns the memory. The hot path reads only the plain copies below: a noncopyable
    /// stored property of a class is borrowed with a dynamic exclusivity check per access.
    private var storage: ByteStorage
    /// `storage`'s memory (allocated at init, so never nil) and size, refreshed when it grows.
    private(set) var bytes: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes in use.
    private(set) var count = 0
    /// The frames that pass descriptors, in order (PROTOCOL.md §4.22). The descriptors are
    /// this bus's own duplicates, closed once sent or when the frame is discarded.
    private(set) var marks: [DescriptorMark] = []
    /// The first mark not yet sent.
    private(set) var nextMarkIndex = 0

    init(capacity: Int = 64 << 10) {
        storage = ByteStorage(capacity: capacity)
        bytes = storage.base.unsafelyUnwrapped
        self.capacity = capacity
    }

    deinit {
        closeUnsentDescriptors()
    }

    var isEmpty: Bool { count == 0 }

    /// Descriptors queued and not yet sent.
    var unsentDescriptorCount: Int {
        marks[nextMarkIndex...].reduce(0) { $0 + $1.descriptors.count }
    }

    /// Whether a frame of `frameLength` bytes passing `descriptors` descriptors may be added
    /// within `byteLimit` and `descriptorLimit` (an empty buffer takes any one frame).
    func hasRoom(forFrameOf frameLength: Int, passing descriptors: Int, byteLimit: Int, descriptorLimit: Int) -> Bool {
        isEmpty || (count + frameLength <= byteLimit && unsentDescriptorCount + descriptors <= descriptorLimit)
    }

    /// Forgets the contents, keeping the memory; descriptors not sent are closed.
    func removeAll() {
        count = 0
        if !marks.isEmpty { closeUnsentDescriptors() }
    }

    @inline(__always)
    private func reserve(_ extra: Int) {
        if capacity - count < extra { grow(to: count + extra) }
    }

    private func grow(to needed: Int) {
        storage.grow(toAtLeast: needed, keeping: 0..<count)
        bytes = storage.base.unsafelyUnwrapped
        capacity = storage.capacity
    }

    /// Appends a PUBLISH frame for validated `topic` bytes and `payload`.
    @inline(__always)
    func appendPublish(topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, flags: UInt8 = 0) {
        let total = FrameHeader.size + topic.count + payload.count
        reserve(total)
        let frame = bytes + count
        FrameHeader(
            bodyLength: UInt32(topic.count + payload.count), type: FrameType.publish.rawValue, flags: flags,
            aux: UInt16(truncatingIfNeeded: topic.count)
        ).store(to: frame)
        if let base = topic.baseAddress { (frame + FrameHeader.size).copyMemory(from: base, byteCount: topic.count) }
        if let base = payload.baseAddress {
            (frame + FrameHeader.size + topic.count).copyMemory(from: base, byteCount: payload.count)
        }
        count += total
    }

    /// Appends already encoded bytes (control frames).
    func append(_ encoded: [UInt8]) {
        reserve(encoded.count)
        encoded.withUnsafeBytes { source in
            if let base = source.baseAddress { (bytes + count).copyMemory(from: base, byteCount: source.count) }
        }
        count += encoded.count
    }

    /// Appends the encoding of `frame`.
    func append(_ frame: Frame) {
        append(FrameEncoder.encode(frame))
    }

    /// Appends an encoded frame that passes `descriptors` (owned by the buffer from now on).
    func append(_ encoded: [UInt8], passing descriptors: [Int32]) {
        marks.append(DescriptorMark(offset: count, descriptors: descriptors))
        append(encoded)
    }

    /// The next frame to pass descriptors, if any is left to send.
    var nextMark: DescriptorMark? {
        nextMarkIndex < marks.count ? marks[nextMarkIndex] : nil
    }

    /// Where the data to send with the next mark ends: the mark after it, or the end.
    var endOfNextMarkSend: Int {
        nextMarkIndex + 1 < marks.count ? marks[nextMarkIndex + 1].offset : count
    }

    /// The next mark's descriptors went out (the kernel installed its own references in the
    /// broker's socket): closes this bus's duplicates.
    func nextMarkSent() {
        for descriptor in marks[nextMarkIndex].descriptors { close(descriptor) }
        nextMarkIndex += 1
    }

    private func closeUnsentDescriptors() {
        for mark in marks[nextMarkIndex...] {
            for descriptor in mark.descriptors { close(descriptor) }
        }
        marks.removeAll(keepingCapacity: true)
        nextMarkIndex = 0
    }
}

/// A frame in an ``OutgoingBuffer`` that passes descriptors: where it starts, and what to
/// send with its first byte as SCM_RIGHTS.
struct DescriptorMark {
    var offset: Int
    var descriptors: [Int32]
}
