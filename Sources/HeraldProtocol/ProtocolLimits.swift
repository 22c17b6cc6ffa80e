/// Size limits of the protocol, and the broker defaults a WELCOME reports.
public enum ProtocolLimits {
    /// Largest frame (header included) a broker accepts by default; WELCOME reports the
    /// value in force.
    public static let defaultMaxFrameSize = 1 << 20
    /// Ceiling for a configured maximum frame size: the body length is a u32, but a frame
    /// must also fit in an output queue, so it is kept well below that.
    public static let maxFrameSizeCeiling = 64 << 20
    /// Longest topic or filter by default, in UTF-8 bytes.
    public static let defaultMaxTopicLength = 1024
    /// Hard ceiling for topic length: the header's aux field is a u16.
    public static let maxTopicLengthCeiling = Int(UInt16.max)
    /// Longest client name in HELLO, in UTF-8 bytes.
    public static let maxClientNameLength = 255
    /// Longest message text in an ERROR or GOODBYE frame, in UTF-8 bytes.
    public static let maxErrorMessageLength = 1024
    /// Default number of subscriptions one connection may hold.
    public static let defaultMaxSubscriptions = 10_000
    /// Default output limit per connection: queued bytes the broker keeps for a subscriber.
    public static let defaultOutputLimit = 8 << 20
    /// Largest valid HELLO frame: the 8-byte header, the 20 fixed body bytes and a client
    /// name of at most ``maxClientNameLength`` bytes. Before WELCOME this is the maximum
    /// frame size, so a connection that has not completed the handshake can make the broker
    /// buffer no more than this.
    public static let maxHelloFrameSize = FrameHeader.size + 20 + maxClientNameLength
    /// Bytes the broker adds in front of the topic when it turns a PUBLISH into a MESSAGE.
    public static let messageSenderBlockSize = SenderBlock.size
    /// Bytes a RETAINED frame has in front of the topic: the sender block, the subscription
    /// id, 4 reserved bytes and the time the message was retained.
    public static let retainedPrefixSize = SenderBlock.size + 16
    /// What a CALL adds to its REQUEST, and a RESPONSE to its REPLY: the 24-byte sender
    /// block (the rest of their fixed fields is the same size as the frame they come from).
    public static let callAllowance = SenderBlock.size
    /// What a MONITORED frame adds to the frame it copies (at most): the sender block and its
    /// own 16 bytes beyond the 8 fixed bytes of a REQUEST or REPLY.
    public static let monitoredAllowance = SenderBlock.size + 16
    /// Most file descriptors one frame may carry (PROTOCOL.md §4.22). The kernel allows 253
    /// per message (SCM_MAX_FD); a bus message needs a few, and a small bound keeps what one
    /// message can pin in the broker small. More travel inside a passed socket or memfd.
    public static let maxDescriptorsPerMessage = 16
}
