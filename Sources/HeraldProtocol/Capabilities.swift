/// Optional features a client announces in HELLO's `capabilities` and the broker confirms in
/// WELCOME's (PROTOCOL.md §4.1, §4.2). The broker uses a feature with a client only if both
/// sides name it, so an older client keeps working unchanged.
public enum Capabilities {
    /// The client understands RETAINED frames (0x13). Without it, the broker hands a new
    /// subscription the retained messages it matches as ordinary MESSAGE frames.
    public static let retained: UInt32 = 0x0000_0001

    /// The client uses request/reply: REQUEST, CALL, REPLY, RESPONSE and responder
    /// subscriptions (0x14–0x17, SUBSCRIBE flag 0x01). A broker that confirms it in WELCOME
    /// knows these frames; a client MUST NOT send them to a broker that did not.
    public static let requests: UInt32 = 0x0000_0002

    /// Every capability this implementation knows.
    public static let known: UInt32 = retained | requests
}
