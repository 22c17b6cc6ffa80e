/// The client's own bookkeeping in front of each run of MESSAGE frames in a
/// ``DeliveryBuffer``: never sent, never read from the wire, and kept out of the frames
/// themselves so that no protocol field (a future flag, a new frame type) can collide with it.
///
/// A run is consecutive MESSAGE frames on one topic, copied verbatim; so only its first
/// frame's topic needs comparing (or decoding) by the reader.
///
/// ```
/// offset 0   u64  droppedBefore   messages the broker reported lost just before this run
/// offset 8   u32  length          bytes of MESSAGE frames that follow
/// offset 12  u8   flags           0x01: the first frame's topic is the previous run's topic;
///                                  0x02: the bus reconnected before this run (a run with this
///                                  flag and no frames marks the gap for the next message);
///                                  0x04: a retained message: the run holds exactly one frame
///                                  (a RETAINED frame rewritten as MESSAGE) and offset 0 holds
///                                  when it was retained (ns since the epoch), not a drop count;
///                                  0x08: a request to answer: the run holds exactly one frame
///                                  (a CALL frame rewritten as MESSAGE) and offset 0 holds its
///                                  call id;
///                                  0x10: a message with an attachment (descriptors passed, a
///                                  sealed payload): the run holds exactly one frame and
///                                  offset 0 holds the index of its ``MessageAttachment`` in
///                                  the buffer's `attachments`
/// offset 13  3 bytes unused
/// ```
/// Native byte order, unaligned: it only ever lives in this process's memory.
struct DeliveryRun {
    /// Size of the record in front of the frames.
    static let size = 16
    /// Longest run (the length is a u32); a longer one is split.
    static let maxLength = Int(UInt32.max)

    var droppedBefore: UInt64
    var length: Int
    var continuesTopic: Bool
    var afterReconnect: Bool
    var retained: Bool
    var call: Bool
    var attached: Bool

    @inline(__always)
    init(
        droppedBefore: UInt64, length: Int, continuesTopic: Bool, afterReconnect: Bool = false, retained: Bool = false,
        call: Bool = false, attached: Bool = false
    ) {
        self.droppedBefore = droppedBefore
        self.length = length
        self.continuesTopic = continuesTopic
        self.afterReconnect = afterReconnect
        self.retained = retained
        self.call = call
        self.attached = attached
    }

    @inline(__always)
    init(loadingFrom pointer: UnsafeRawPointer) {
        droppedBefore = pointer.loadUnaligned(as: UInt64.self)
        length = Int(pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        let flags = pointer.load(fromByteOffset: 12, as: UInt8.self)
        continuesTopic = flags & 0x01 != 0
        afterReconnect = flags & 0x02 != 0
        retained = flags & 0x04 != 0
        call = flags & 0x08 != 0
        attached = flags & 0x10 != 0
    }

    @inline(__always)
    func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: droppedBefore, as: UInt64.self)
        pointer.storeBytes(of: UInt32(truncatingIfNeeded: length), toByteOffset: 8, as: UInt32.self)
        let flags: UInt32 = (continuesTopic ? 0x01 : 0) | (afterReconnect ? 0x02 : 0) | (retained ? 0x04 : 0) | (call ? 0x08 : 0)
            | (attached ? 0x10 : 0)
        pointer.storeBytes(of: flags, toByteOffset: 12, as: UInt32.self)
    }

    /// Adds `count` bytes of frames to the run whose record is at `pointer`.
    @inline(__always)
    static func extend(at pointer: UnsafeMutableRawPointer, by count: Int) {
        let length = pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        pointer.storeBytes(of: length + UInt32(truncatingIfNeeded: count), toByteOffset: 8, as: UInt32.self)
    }

    /// The length stored in the record at `pointer`.
    @inline(__always)
    static func length(at pointer: UnsafeRawPointer) -> Int {
        Int(pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
    }
}
