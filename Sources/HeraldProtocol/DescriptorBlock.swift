/// What a frame says about the file descriptors passed with it (PROTOCOL.md §4.22).
///
/// A frame that carries descriptors has the `fds` flag (``FrameFlags/descriptors``, 0x80)
/// and sends them as one SCM_RIGHTS control message on its first byte. Where the count goes
/// depends on who sends the frame:
///
/// ```
/// client frames (PUBLISH, SEND, REPLY): 4 bytes in front of the usual body
/// offset 0   u8   fd_count   descriptors passed with this frame, 1 ... 16
/// offset 1   u8   fd_flags   0x01 sealed_payload; every other bit 0
/// offset 2   u16  reserved   0
///
/// broker frames (MESSAGE, DIRECT, RESPONSE, MONITORED): the sender block's last 4 bytes
/// offset 20  u8   fd_count   descriptors passed with this frame
/// offset 21  u8   fd_withheld descriptors the sender attached that this receiver does not get
/// offset 22  u8   fd_flags   as above
/// offset 23  u8   reserved   0
/// ```
public struct DescriptorBlock: Equatable, Sendable {
    /// Size of the block a client frame carries in front of its body.
    public static let size = 4
    /// Offset in the sender block of a broker frame where the block's fields start.
    public static let senderBlockOffset = 20
    /// `fd_flags`: the sender's first descriptor is a sealed memfd (F_SEAL_WRITE,
    /// F_SEAL_GROW, F_SEAL_SHRINK) holding the message's payload; the frame's own payload is empty.
    public static let sealedPayloadFlag: UInt8 = 0x01
    /// Every `fd_flags` bit this version defines.
    public static let definedFlags: UInt8 = sealedPayloadFlag

    /// Descriptors passed with this frame.
    public var count: UInt8
    /// Broker frames only: descriptors the sender attached that this receiver does not get
    /// (it did not announce the `fds` capability, or this is a monitor's copy). 0 in client frames.
    public var withheld: UInt8
    /// Whether the sender's first descriptor holds the payload as a sealed memfd.
    public var sealedPayload: Bool

    /// Creates a block.
    public init(count: UInt8, withheld: UInt8 = 0, sealedPayload: Bool = false) {
        self.count = count
        self.withheld = withheld
        self.sealedPayload = sealedPayload
    }

    /// The `fd_flags` byte.
    public var flags: UInt8 { sealedPayload ? DescriptorBlock.sealedPayloadFlag : 0 }

    /// Reads a client frame's block from the 4 bytes at `pointer`; nil (and the problem)
    /// when its count is 0 or it sets undefined flags.
    public static func loadClientBlock(from pointer: UnsafeRawPointer) -> Result<DescriptorBlock, FrameDecodingError> {
        let count = pointer.load(as: UInt8.self)
        let flags = pointer.load(fromByteOffset: 1, as: UInt8.self)
        guard count > 0 else { return .failure(.invalidValue("fds flag set with an fd_count of 0")) }
        guard flags & ~definedFlags == 0 else {
            return .failure(.invalidValue("fd_flags bits 0x\(String(flags & ~definedFlags, radix: 16)) are not defined"))
        }
        return .success(DescriptorBlock(count: count, sealedPayload: flags & sealedPayloadFlag != 0))
    }

    /// Writes a client frame's block to the 4 bytes at `pointer`.
    public func storeClientBlock(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: count, as: UInt8.self)
        pointer.storeBytes(of: flags, toByteOffset: 1, as: UInt8.self)
        pointer.storeBytes(of: UInt16(0), toByteOffset: 2, as: UInt16.self)
    }

    /// Reads a broker frame's fields from the sender block at `senderBlock`; nil (and the
    /// problem) when it names no descriptor at all or sets undefined flags.
    public static func loadFromSenderBlock(_ senderBlock: UnsafeRawPointer) -> Result<DescriptorBlock, FrameDecodingError> {
        let count = senderBlock.load(fromByteOffset: senderBlockOffset, as: UInt8.self)
        let withheld = senderBlock.load(fromByteOffset: senderBlockOffset + 1, as: UInt8.self)
        let flags = senderBlock.load(fromByteOffset: senderBlockOffset + 2, as: UInt8.self)
        guard count > 0 || withheld > 0 else { return .failure(.invalidValue("fds flag set with no descriptor passed or withheld")) }
        guard flags & ~definedFlags == 0 else {
            return .failure(.invalidValue("fd_flags bits 0x\(String(flags & ~definedFlags, radix: 16)) are not defined"))
        }
        return .success(DescriptorBlock(count: count, withheld: withheld, sealedPayload: flags & sealedPayloadFlag != 0))
    }

    /// Writes a broker frame's fields into the sender block at `senderBlock` (after the
    /// block itself was stored, which zeroes them).
    public func store(intoSenderBlock senderBlock: UnsafeMutableRawPointer) {
        senderBlock.storeBytes(of: count, toByteOffset: DescriptorBlock.senderBlockOffset, as: UInt8.self)
        senderBlock.storeBytes(of: withheld, toByteOffset: DescriptorBlock.senderBlockOffset + 1, as: UInt8.self)
        senderBlock.storeBytes(of: flags, toByteOffset: DescriptorBlock.senderBlockOffset + 2, as: UInt8.self)
    }
}
