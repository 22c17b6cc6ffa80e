import HeraldProtocol

/// Received messages on their way from the I/O thread to one subscription's iterator, kept
/// as the broker's MESSAGE frames, verbatim and back to back (unsafe, fenced in this file).
///
/// The I/O thread only copies frames in (a run of frames for one subscription with one
/// `memcpy`); the iterator turns them into ``Message`` values. So a message costs the I/O
/// thread no allocation, and its payload array is allocated and (usually) freed by the
/// consuming thread, which keeps glibc's malloc on its per-thread fast path and touches no
/// reference count from two cores.
///
/// A drop notice for the next message is a pseudo-frame in front of it: type
/// ``dropMarkerType``, body: u64 count (native byte order). A frame whose topic is the same
/// as the previous frame's in the same buffer has ``sameTopicFlag`` set (the I/O thread
/// knows from routing), so the reader neither compares nor decodes it again.
///
/// A buffer is owned by one side at a time: the I/O thread fills it, hands it to the
/// ``SubscriptionState`` under its lock, the iterator takes and reads it, and gives it back
/// (under the same lock) for reuse. That hand-over is the synchronization, hence
/// `@unchecked Sendable`.
final class DeliveryBuffer: @unchecked Sendable {
    /// Header type byte of a drop marker (not a protocol frame type).
    static let dropMarkerType: UInt8 = 0xFF
    static let dropMarkerSize = FrameHeader.size + 8
    /// Header flag (MESSAGE frames arrive with no flags set): same topic as the previous frame.
    static let sameTopicFlag: UInt8 = 0x80
    /// Buffers that grew beyond this (for a huge message) are not kept for reuse.
    static let maxReusedCapacity = 1 << 20

    private(set) var bytes: UnsafeMutableRawPointer
    /// Bytes in use.
    private(set) var count = 0
    private(set) var capacity: Int
    /// What the messages are charged against the subscription's buffer limit.
    private(set) var charge = 0
    /// The caller's tag for the last frame's topic (see ``append(frame:length:topicRun:droppedBefore:charge:)``).
    private var lastTopicRun = 0

    init(capacity: Int = 4 << 10) {
        self.capacity = capacity
        bytes = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit {
        bytes.deallocate()
    }

    var isEmpty: Bool { count == 0 }

    /// Forgets the contents, keeping the memory.
    func removeAll() {
        count = 0
        charge = 0
    }

    /// Appends one MESSAGE frame (already validated), preceded by a drop marker if
    /// `droppedBefore` is not 0. `topicRun` identifies a run of frames on one topic: equal
    /// values for consecutive frames mean equal topics.
    @inline(__always)
    func append(frame: UnsafeRawPointer, length: Int, topicRun: Int, droppedBefore: UInt64, charge: Int) {
        let needed = droppedBefore == 0 ? length : length + DeliveryBuffer.dropMarkerSize
        if capacity - count < needed { grow(to: count + needed) }
        var end = bytes + count
        if droppedBefore != 0 {
            FrameHeader(bodyLength: 8, type: DeliveryBuffer.dropMarkerType).store(to: end)
            end.storeBytes(of: droppedBefore, toByteOffset: FrameHeader.size, as: UInt64.self)
            end += DeliveryBuffer.dropMarkerSize
        }
        end.copyMemory(from: frame, byteCount: length)
        if topicRun == lastTopicRun && count > 0 {
            end.storeBytes(of: DeliveryBuffer.sameTopicFlag, toByteOffset: 5, as: UInt8.self)
        }
        lastTopicRun = topicRun
        count += needed
        self.charge += charge
    }

    /// Appends consecutive MESSAGE frames (already validated) on one topic, all but the first
    /// already marked with ``sameTopicFlag``; `topicRun` as for a single frame.
    @inline(__always)
    func append(frames: UnsafeRawPointer, length: Int, topicRun: Int, charge: Int) {
        if capacity - count < length { grow(to: count + length) }
        let end = bytes + count
        end.copyMemory(from: frames, byteCount: length)
        if topicRun == lastTopicRun && count > 0 {
            end.storeBytes(of: DeliveryBuffer.sameTopicFlag, toByteOffset: 5, as: UInt8.self)
        }
        lastTopicRun = topicRun
        count += length
        self.charge += charge
    }

    private func grow(to needed: Int) {
        let newCapacity = max(needed, capacity * 2)
        let bigger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 16)
        bigger.copyMemory(from: bytes, byteCount: count)
        bytes.deallocate()
        bytes = bigger
        capacity = newCapacity
    }
}

/// The iterator's side: the buffers it took from the ``SubscriptionState``, and a cursor
/// that turns their frames into messages one at a time.
///
/// A value type stored in the iterator, so the per-message path mutates only the caller's
/// own storage: no lock, no reference counting, no dynamic exclusivity check.
@usableFromInline
struct Inbox {
    /// Buffers taken from the subscription, read in order; kept (and so their memory valid)
    /// until they are given back by ``SubscriptionState/take(into:)``.
    var buffers: [DeliveryBuffer] = []
    /// The next buffer to read after the current one.
    var nextBuffer = 0
    /// The next frame to read, and the end of the current buffer's frames.
    var cursor: UnsafeRawPointer?
    var end: UnsafeRawPointer?
    /// The last topic seen (pointing into a held buffer) and its String, so a run of
    /// messages on one topic decodes it once.
    var topicBytes: UnsafeRawPointer?
    var topicLength = -1
    var topic = ""

    @usableFromInline
    init() {}

    /// The next buffered message, or nil when every held buffer has been read.
    @usableFromInline
    mutating func next() -> Message? {
        guard let view = nextView() else { return nil }
        // Not Array(unsafeUninitializedCapacity:): that path allocates through an unspecialized
        // stdlib function that looks the storage type's metadata up on every call.
        return Message(
            topic: view.topic, payload: [UInt8](view.payloadBytes), sender: view.sender, droppedBefore: view.droppedBefore)
    }

    /// The next buffered message read in place, or nil when every held buffer has been read.
    @inline(__always)
    mutating func nextView() -> MessageView? {
        guard prepare() else { return nil }
        var frame = cursor.unsafelyUnwrapped
        var droppedBefore: UInt64 = 0
        if frame.load(fromByteOffset: 4, as: UInt8.self) == DeliveryBuffer.dropMarkerType {
            // A marker is always followed by its message, in the same buffer.
            droppedBefore = frame.loadUnaligned(fromByteOffset: FrameHeader.size, as: UInt64.self)
            frame += DeliveryBuffer.dropMarkerSize
        }
        let header = FrameHeader(loadingFrom: frame)
        cursor = frame + header.frameLength
        let body = frame + FrameHeader.size
        let senderSize = ProtocolLimits.messageSenderBlockSize
        let topicLength = Int(header.aux)
        let topicStart = body + senderSize
        if header.flags & DeliveryBuffer.sameTopicFlag == 0
            && (topicLength != self.topicLength || !ByteComparison.equal(topicStart, topicBytes.unsafelyUnwrapped, count: topicLength))
        {
            topic = String(decoding: UnsafeRawBufferPointer(start: topicStart, count: topicLength), as: UTF8.self)
            topicBytes = topicStart
            self.topicLength = topicLength
        }
        let payloadLength = Int(header.bodyLength) - senderSize - topicLength
        let block = SenderBlock(loadingFrom: body)
        let sender = Message.Sender(
            peerID: block.senderID, pid: block.credentials.pid, uid: block.credentials.uid, gid: block.credentials.gid)
        return MessageView(
            topic: topic, payloadBytes: UnsafeRawBufferPointer(start: topicStart + topicLength, count: payloadLength),
            sender: sender, droppedBefore: droppedBefore)
    }

    /// Whether a message is buffered (moving to the next held buffer if needed).
    @inline(__always)
    mutating func prepare() -> Bool {
        cursor != end || advance()
    }

    /// Moves the cursor to the next held buffer with frames; false if there is none.
    private mutating func advance() -> Bool {
        while nextBuffer < buffers.count {
            let buffer = buffers[nextBuffer]
            nextBuffer += 1
            if !buffer.isEmpty {
                let start = UnsafeRawPointer(buffer.bytes)
                cursor = start
                end = start + buffer.count
                return true
            }
        }
        return false
    }

    /// Forgets the read position and everything pointing into the held buffers, which are
    /// about to be given back. Returns them (to recycle).
    mutating func releaseBuffers() -> [DeliveryBuffer] {
        cursor = nil
        end = nil
        topicBytes = nil
        topicLength = -1
        nextBuffer = 0
        var released: [DeliveryBuffer] = []
        swap(&released, &buffers)
        return released
    }
}
