/// The 8-byte header in front of every frame.
///
/// ```
/// offset 0  u32  body length (bytes after this header)
/// offset 4  u8   type (FrameType)
/// offset 5  u8   flags (per type; unknown bits must be zero)
/// offset 6  u16  aux (PUBLISH and MESSAGE: topic length; otherwise zero)
/// ```
/// All integers are little-endian.
public struct FrameHeader: Equatable, Sendable {
    /// Size of the header in bytes.
    public static let size = 8

    /// Bytes that follow the header.
    public var bodyLength: UInt32
    /// Raw type byte; see ``FrameType``.
    public var type: UInt8
    /// Type-specific flags.
    public var flags: UInt8
    /// Type-specific 16-bit field (topic length for PUBLISH and MESSAGE).
    public var aux: UInt16

    /// Creates a header.
    public init(bodyLength: UInt32, type: UInt8, flags: UInt8 = 0, aux: UInt16 = 0) {
        self.bodyLength = bodyLength
        self.type = type
        self.flags = flags
        self.aux = aux
    }

    /// Total frame length, header included.
    public var frameLength: Int { FrameHeader.size + Int(bodyLength) }

    /// Reads a header from the first 8 bytes at `pointer` (no alignment needed).
    @inlinable
    public init(loadingFrom pointer: UnsafeRawPointer) {
        bodyLength = UInt32(littleEndian: pointer.loadUnaligned(as: UInt32.self))
        type = pointer.load(fromByteOffset: 4, as: UInt8.self)
        flags = pointer.load(fromByteOffset: 5, as: UInt8.self)
        aux = UInt16(littleEndian: pointer.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
    }

    /// Writes the header to the first 8 bytes at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: bodyLength.littleEndian, as: UInt32.self)
        pointer.storeBytes(of: type, toByteOffset: 4, as: UInt8.self)
        pointer.storeBytes(of: flags, toByteOffset: 5, as: UInt8.self)
        pointer.storeBytes(of: aux.littleEndian, toByteOffset: 6, as: UInt16.self)
    }
}

/// Bits of the header's flags byte.
public enum FrameFlags {
    /// ERROR: the broker closes the connection after this frame.
    public static let fatal: UInt8 = 0x01
    /// PUBLISH (and WILL, for the will's publish): the broker keeps this message as the topic's retained message (an empty
    /// payload clears it) and gives it to every later matching subscription.
    public static let retain: UInt8 = 0x01
    /// SUBSCRIBE: a responder subscription, which receives the REQUESTs on matching topics
    /// as CALL frames (and no MESSAGE frames).
    public static let responder: UInt8 = 0x01
    /// SUBSCRIBE: a monitor subscription (root and the broker's user only): besides the
    /// messages published on matching topics, it receives MONITORED copies of the requests,
    /// replies and direct messages on them.
    public static let monitor: UInt8 = 0x02
    /// PUBLISH, SEND and REPLY from a client, MESSAGE, DIRECT, RESPONSE and MONITORED from the
    /// broker: the frame carries file descriptors, or (broker frames) withholds them
    /// (``DescriptorBlock``, PROTOCOL.md §4.22).
    public static let descriptors: UInt8 = 0x80
}
