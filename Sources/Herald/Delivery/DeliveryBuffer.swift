import HeraldProtocol

/// Received messages on their way from the I/O thread to one subscription's iterator, kept
/// as the broker's MESSAGE frames, verbatim and back to back, in runs (unsafe, fenced in
/// this file and ``Inbox``).
///
/// The I/O thread only copies frames in (a run of frames for one subscription with one
/// `memcpy`); the iterator turns them into ``Message`` values. So a message costs the I/O
/// thread no allocation, and its payload array is allocated and (usually) freed by the
/// consuming thread, which keeps glibc's malloc on its per-thread fast path and touches no
/// reference count from two cores.
///
/// Frames are grouped in runs on one topic, each behind a ``DeliveryRun`` record that
/// carries what the client adds (a drop count, whether the topic continues): the frames
/// themselves are never modified.
///
/// A buffer is owned by one side at a time: the I/O thread fills it, hands it to the
/// ``SubscriptionState`` under its lock, the iterator takes and reads it, and gives it back
/// (under the same lock) for reuse. That hand-over is the synchronization, hence
/// `@unchecked Sendable`.
final class DeliveryBuffer: @unchecked Sendable {
    /// Buffers that grew beyond this (for a huge message) are not kept for reuse.
    static let maxReusedCapacity = 1 << 20

    /// Owns the memory. The hot path reads only the plain copies below: a noncopyable
    /// stored property of a class is borrowed with a dynamic exclusivity check per access.
    private var storage: ByteStorage
    /// `storage`'s memory (allocated at init, so never nil) and size, refreshed when it grows.
    private(set) var bytes: UnsafeMutableRawPointer
    private(set) var capacity: Int
    /// Bytes in use.
    private(set) var count = 0
    /// What the messages are charged against the subscription's buffer limit.
    private(set) var charge = 0
    /// The caller's tag for the last frame's topic (see ``append(frame:length:topicRun:droppedBefore:charge:)``).
    private var lastTopicRun = 0
    /// Offset of the last run's record, so frames on the same topic extend it; -1 for none.
    private var lastRunOffset = -1
    /// What the messages with attachments carry (descriptors, sealed payloads), indexed by
    /// their runs; released with the buffer's contents (closing descriptors nobody took).
    private(set) var attachments: [MessageAttachment] = []

    init(capacity: Int = 4 << 10) {
        storage = ByteStorage(capacity: capacity)
        bytes = storage.base.unsafelyUnwrapped
        self.capacity = capacity
    }

    var isEmpty: Bool { count == 0 }

    /// Forgets the contents, keeping the memory.
    func removeAll() {
        count = 0
        charge = 0
        lastRunOffset = -1
        if !attachments.isEmpty { attachments.removeAll(keepingCapacity: true) }
    }

    /// Appends one MESSAGE frame (already validated); `droppedBefore` messages were lost just
    /// before it. `topicRun` identifies a run of frames on one topic: equal values for
    /// consecutive frames mean equal topics.
    @inline(__always)
    func append(frame: UnsafeRawPointer, length: Int, topicRun: Int, droppedBefore: UInt64, charge: Int) {
        append(frames: frame, length: length, topicRun: topicRun, droppedBefore: droppedBefore, charge: charge)
    }

    /// Appends consecutive MESSAGE frames (already validated) on one topic; `topicRun` as for
    /// a single frame. Frames that continue the last run (same topic, nothing dropped in
    /// between) extend it; others start a run.
    @inline(__always)
    func append(frames: UnsafeRawPointer, length: Int, topicRun: Int, droppedBefore: UInt64 = 0, charge: Int) {
        let continuesTopic = topicRun == lastTopicRun && count > 0
        if continuesTopic && droppedBefore == 0 && lastRunOffset >= 0
            && DeliveryRun.length(at: bytes + lastRunOffset) <= DeliveryRun.maxLength - length
        {
            if capacity - count < length { grow(to: count + length) }
            (bytes + count).copyMemory(from: frames, byteCount: length)
            DeliveryRun.extend(at: bytes + lastRunOffset, by: length)
            count += length
        } else {
            let needed = DeliveryRun.size + length
            if capacity - count < needed { grow(to: count + needed) }
            DeliveryRun(droppedBefore: droppedBefore, length: length, continuesTopic: continuesTopic).store(to: bytes + count)
            (bytes + count + DeliveryRun.size).copyMemory(from: frames, byteCount: length)
            lastRunOffset = count
            count += needed
        }
        lastTopicRun = topicRun
        self.charge += charge
    }

    /// Appends a retained message as a run of its own: `frame` is a whole MESSAGE frame (the
    /// RETAINED frame rewritten), `retainedAt` when the broker stored it.
    func appendRetained(frame: UnsafeRawBufferPointer, retainedAt: UInt64, charge: Int) {
        appendSingle(DeliveryRun(droppedBefore: retainedAt, length: frame.count, continuesTopic: false, retained: true), frame, charge: charge)
    }

    /// Appends a request to answer as a run of its own: `frame` is a whole MESSAGE frame (the
    /// CALL frame rewritten), `callID` the id its REPLY must name.
    func appendCall(frame: UnsafeRawBufferPointer, callID: UInt32, charge: Int) {
        appendSingle(DeliveryRun(droppedBefore: UInt64(callID), length: frame.count, continuesTopic: false, call: true), frame, charge: charge)
    }

    /// Appends one MESSAGE frame as a run of its own, with nothing special about it (a
    /// direct message).
    func appendAlone(frame: UnsafeRawBufferPointer, charge: Int) {
        appendSingle(DeliveryRun(droppedBefore: 0, length: frame.count, continuesTopic: false), frame, charge: charge)
    }

    /// Appends a message that passes descriptors (or a sealed payload) as a run of its own:
    /// `frame` is its whole MESSAGE frame, `attachment` what it carries.
    func appendAttached(frame: UnsafeRawBufferPointer, attachment: MessageAttachment, charge: Int) {
        let run = DeliveryRun(droppedBefore: UInt64(attachments.count), length: frame.count, continuesTopic: false, attached: true)
        attachments.append(attachment)
        appendSingle(run, frame, charge: charge)
    }

    /// Marks `dropped` messages lost before whatever is appended next (a run with no frames,
    /// for a message whose run's record has no room for a drop count).
    func appendDropMarker(_ dropped: UInt64) {
        if capacity - count < DeliveryRun.size { grow(to: count + DeliveryRun.size) }
        DeliveryRun(droppedBefore: dropped, length: 0, continuesTopic: false).store(to: bytes + count)
        count += DeliveryRun.size
        lastRunOffset = -1
    }

    /// Appends one frame as a run of its own, under `run`.
    private func appendSingle(_ run: DeliveryRun, _ frame: UnsafeRawBufferPointer, charge: Int) {
        let needed = DeliveryRun.size + frame.count
        if capacity - count < needed { grow(to: count + needed) }
        run.store(to: bytes + count)
        (bytes + count + DeliveryRun.size).copyMemory(from: frame.baseAddress!, byteCount: frame.count)
        count += needed
        // Whatever follows starts a run of its own.
        lastRunOffset = -1
        lastTopicRun = -1
        self.charge += charge
    }

    /// Marks a reconnect: the next message appended (or, if none follows in this buffer, the
    /// next one the subscription reads) has ``Message/afterReconnect`` set.
    func appendReconnectMarker() {
        if capacity - count < DeliveryRun.size { grow(to: count + DeliveryRun.size) }
        DeliveryRun(droppedBefore: 0, length: 0, continuesTopic: false, afterReconnect: true).store(to: bytes + count)
        count += DeliveryRun.size
        // The next frames start a run of their own (a marker run holds none).
        lastRunOffset = -1
    }

    private func grow(to needed: Int) {
        storage.grow(toAtLeast: needed, keeping: 0..<count)
        bytes = storage.base.unsafelyUnwrapped
        capacity = storage.capacity
    }
}
