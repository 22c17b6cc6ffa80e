/// The 24 bytes at the start of every MESSAGE body (PROTOCOL.md §4.11): who published the
/// message, as the broker saw it at connect time. The one owner of that layout: the broker's
/// routing loop stores it, the encoder writes it and the client's receive path reads it.
///
/// ```
/// offset 0   u64  sender_id  (the publisher's peer id)
/// offset 8   u32  sender_pid
/// offset 12  u32  sender_uid
/// offset 16  u32  sender_gid
/// offset 20  u32  reserved (0)
/// ```
/// All integers are little-endian. Storing and loading are `@inlinable` and compile to a
/// few moves: the broker writes one per delivery.
public struct SenderBlock: Equatable, Sendable {
    /// Size of the block in bytes.
    public static let size = 24

    /// The publishing connection's peer id.
    public var senderID: UInt64
    /// The publisher's kernel-reported pid, uid and gid.
    public var credentials: PeerCredentials

    /// Creates a block.
    @inlinable
    public init(senderID: UInt64, credentials: PeerCredentials) {
        self.senderID = senderID
        self.credentials = credentials
    }

    /// Reads a block from the 24 bytes at `pointer` (no alignment needed).
    @inlinable
    public init(loadingFrom pointer: UnsafeRawPointer) {
        senderID = UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self))
        credentials = PeerCredentials(
            pid: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt32.self)),
            uid: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 12, as: UInt32.self)),
            gid: UInt32(littleEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
    }

    /// Writes the block, reserved bytes zeroed, to the 24 bytes at `pointer`.
    @inlinable
    public func store(to pointer: UnsafeMutableRawPointer) {
        pointer.storeBytes(of: senderID.littleEndian, as: UInt64.self)
        pointer.storeBytes(of: credentials.pid.littleEndian, toByteOffset: 8, as: UInt32.self)
        pointer.storeBytes(of: credentials.uid.littleEndian, toByteOffset: 12, as: UInt32.self)
        pointer.storeBytes(of: credentials.gid.littleEndian, toByteOffset: 16, as: UInt32.self)
        pointer.storeBytes(of: UInt32(0), toByteOffset: 20, as: UInt32.self)
    }
}
