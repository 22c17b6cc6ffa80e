import HeraldProtocol

/// A growable byte FIFO over manually managed memory: a peer's queued output or its
/// partial input. No Swift array sits on the hot path, so appending a delivery costs a
/// bounds check and a memcpy, never an allocation (the storage grows geometrically and is
/// reused). Not copyable: exactly one owner frees the storage.
struct ByteQueue: ~Copyable {
    private var storage = ByteStorage()
    /// Bytes allocated.
    var capacity: Int { storage.capacity }
    /// Offset of the first byte not yet consumed.
    private(set) var head = 0
    /// Offset one past the last byte.
    private(set) var tail = 0
    /// Offset of the first frame that has not started to be consumed (>= head). Tracked so
    /// the queue can be cut back to a frame boundary when a peer is disconnected.
    private var frameBoundary = 0

    /// The smallest allocation; idle peers hold no storage at all.
    static let minimumCapacity = 4096
    /// Above this size an output queue grows in one step to its compaction threshold.
    static let directGrowthThreshold = 256 << 10
    /// Capacity past which the queue compacts in place rather than grow, so memory stays
    /// near the output limit instead of doubling past it.
    var compactionThreshold = Int.max

    init() {}

    /// Bytes queued.
    var count: Int { tail - head }
    var isEmpty: Bool { tail == head }

    /// Pointer to the first queued byte (valid until the next mutation).
    var readPointer: UnsafeMutableRawPointer { storage.base! + head }

    /// Returns a pointer with room for `length` bytes at the tail; call ``commit(_:)`` after writing.
    @inline(__always)
    mutating func reserve(_ length: Int) -> UnsafeMutableRawPointer {
        if storage.capacity - tail < length { makeRoom(for: length) }
        return storage.base! + tail
    }

    @inline(__always)
    mutating func commit(_ length: Int) { tail += length }

    /// Appends `bytes`.
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count).copyMemory(from: base, byteCount: bytes.count)
        tail += bytes.count
    }

    /// Appends `bytes`.
    mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Drops the first `length` queued bytes and advances the frame boundary past them.
    /// Only queues of whole frames use the boundary; input stashes ignore it.
    mutating func consume(_ length: Int) {
        head += length
        if head == tail {
            head = 0
            tail = 0
            frameBoundary = 0
            // Storage is kept for the next burst (fresh pages cost a fault each); the
            // broker's once-a-second sweep returns it from peers that went idle.
            return
        }
        // Walk frame headers already sent; headers are still in memory (no compaction yet).
        while frameBoundary < head {
            let header = FrameHeader(loadingFrom: storage.base! + frameBoundary)
            frameBoundary += header.frameLength
        }
    }

    /// Drops everything after the frame that is partly consumed, so what remains is a
    /// whole number of frames from the reader's point of view. Returns the bytes discarded.
    @discardableResult
    mutating func truncateToFrameBoundary() -> Int {
        let discarded = tail - frameBoundary
        if discarded > 0 { tail = frameBoundary }
        if head == tail {
            head = 0
            tail = 0
            frameBoundary = 0
        }
        return discarded
    }

    /// Drops the first `length` bytes without tracking frames (input stashes).
    mutating func discard(_ length: Int) {
        head += length
        frameBoundary = head
        if head == tail {
            head = 0
            tail = 0
            frameBoundary = 0
        }
    }

    /// Drops everything queued; keeps the storage for reuse if asked.
    mutating func removeAll(keepingStorage: Bool = false) {
        head = 0
        tail = 0
        frameBoundary = 0
        if !keepingStorage { releaseStorage() }
    }

    /// Frees the storage if nothing is queued, so an idle peer holds no buffer.
    mutating func releaseStorageIfEmpty() {
        if isEmpty { releaseStorage() }
    }

    private mutating func releaseStorage() {
        storage.release()
    }

    private mutating func makeRoom(for length: Int) {
        let used = tail - head
        let capacity = storage.capacity
        if head > 0 && used + length <= capacity && (head >= used || capacity >= compactionThreshold) {
            // Compact: slide the live bytes to the front. Cheap when at least half is consumed;
            // past the threshold it bounds memory, and only slow consumers get there.
            storage.compact(head..<tail)
        } else {
            var newCapacity = max(capacity * 2, ByteQueue.minimumCapacity)
            while newCapacity < used + length { newCapacity *= 2 }
            // A queue that outgrows the small sizes goes straight to its final capacity (the
            // output limit plus one frame): untouched pages of a large allocation cost no memory,
            // while each doubling would hold the old and new buffers at once (a peak of 2x).
            // From there compaction takes over, so memory stays near the output limit.
            if newCapacity > ByteQueue.directGrowthThreshold && compactionThreshold != Int.max {
                newCapacity = max(compactionThreshold, used + length)
            }
            storage.reallocate(capacity: newCapacity, keeping: head..<tail)
        }
        frameBoundary -= head
        tail = used
        head = 0
    }
}
