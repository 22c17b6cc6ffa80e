/// Equality of short byte runs (topics) without a call to `memcmp`, for hot paths on both
/// sides of the wire: the broker's route cache and the client's topic reuse.
public enum ByteComparison {
    /// Whether the `count` bytes at `a` and `b` are equal; compares eight bytes at a time, inline.
    @inlinable @inline(__always)
    public static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, count: Int) -> Bool {
        var offset = 0
        while count - offset >= 8 {
            if a.loadUnaligned(fromByteOffset: offset, as: UInt64.self) != b.loadUnaligned(fromByteOffset: offset, as: UInt64.self) {
                return false
            }
            offset += 8
        }
        while offset < count {
            if a.load(fromByteOffset: offset, as: UInt8.self) != b.load(fromByteOffset: offset, as: UInt8.self) { return false }
            offset += 1
        }
        return true
    }
}
