/// Little-endian append helpers for building frames in a `[UInt8]`.
extension Array where Element == UInt8 {
    @inlinable
    mutating func appendLE(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value))
        append(UInt8(truncatingIfNeeded: value >> 8))
    }

    @inlinable
    mutating func appendLE(_ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    @inlinable
    mutating func appendLE(_ value: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}

/// Reads little-endian fields from a frame body, failing on anything past its end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(FrameDecodingError) -> UInt8 {
        guard remaining >= 1 else { throw .truncatedBody }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(FrameDecodingError) -> UInt16 {
        guard remaining >= 2 else { throw .truncatedBody }
        defer { offset += 2 }
        return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    mutating func u32() throws(FrameDecodingError) -> UInt32 {
        guard remaining >= 4 else { throw .truncatedBody }
        defer { offset += 4 }
        return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    mutating func u64() throws(FrameDecodingError) -> UInt64 {
        guard remaining >= 8 else { throw .truncatedBody }
        defer { offset += 8 }
        return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// The next `count` bytes in place (for a structure that owns its layout), skipping them.
    mutating func fixed(_ count: Int) throws(FrameDecodingError) -> UnsafeRawPointer {
        guard remaining >= count else { throw .truncatedBody }
        defer { offset += count }
        return bytes.baseAddress! + offset
    }

    mutating func bytes(_ count: Int) throws(FrameDecodingError) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw .truncatedBody }
        defer { offset += count }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + count]))
    }

    mutating func rest() -> [UInt8] {
        defer { offset = bytes.count }
        return Array(UnsafeRawBufferPointer(rebasing: bytes[offset...]))
    }

    mutating func utf8(_ count: Int) throws(FrameDecodingError) -> String {
        let raw = try bytes(count)
        guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidUTF8 }
        return text
    }

    func expectEnd() throws(FrameDecodingError) {
        guard remaining == 0 else { throw .trailingBytes }
    }
}
