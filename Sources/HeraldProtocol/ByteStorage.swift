/// Growable raw memory with exactly one owner: the storage under the broker's output and
/// input queues and the client's read, delivery and outgoing buffers, so that allocating,
/// growing, compacting and freeing are written once.
///
/// No reference counting and no bounds checks: the owning type keeps its own offsets and
/// fences the unsafe code. Not copyable, so exactly one owner frees it (on deinit).
public struct ByteStorage: ~Copyable {
    /// Alignment of every allocation: enough for any load a frame parser does.
    public static let alignment = 16

    /// The memory, or nil before the first allocation (an idle broker peer holds none).
    public private(set) var base: UnsafeMutableRawPointer?
    /// Bytes allocated.
    public private(set) var capacity: Int

    /// No memory yet.
    public init() {
        base = nil
        capacity = 0
    }

    /// `capacity` bytes, uninitialized.
    public init(capacity: Int) {
        base = .allocate(byteCount: capacity, alignment: ByteStorage.alignment)
        self.capacity = capacity
    }

    deinit { base?.deallocate() }

    /// Replaces the memory with `newCapacity` bytes that start with the bytes of `live`
    /// (offsets into the old memory), moved to offset 0.
    public mutating func reallocate(capacity newCapacity: Int, keeping live: Range<Int>) {
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: ByteStorage.alignment)
        if let base, !live.isEmpty { fresh.copyMemory(from: base + live.lowerBound, byteCount: live.count) }
        base?.deallocate()
        base = fresh
        capacity = newCapacity
    }

    /// Grows to at least `needed` bytes, at least doubling (so appends cost amortized O(1)),
    /// keeping the bytes of `live` moved to offset 0.
    public mutating func grow(toAtLeast needed: Int, keeping live: Range<Int>) {
        reallocate(capacity: max(needed, capacity * 2), keeping: live)
    }

    /// Moves the bytes of `live` to offset 0 in place (the ranges may overlap).
    public mutating func compact(_ live: Range<Int>) {
        guard let base, live.lowerBound > 0 else { return }
        base.copyMemory(from: base + live.lowerBound, byteCount: live.count)
    }

    /// Frees the memory; the next use must reallocate.
    public mutating func release() {
        base?.deallocate()
        base = nil
        capacity = 0
    }
}
