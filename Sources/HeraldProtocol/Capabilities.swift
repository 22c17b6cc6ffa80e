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

    /// The client uses direct messages: SEND (0x18) and DIRECT (0x19). A broker that confirms
    /// it in WELCOME knows these frames; a client MUST NOT send SEND to a broker that did not.
    public static let direct: UInt32 = 0x0000_0004

    /// The client accepts direct messages: other peers may SEND to it, and it receives them
    /// as DIRECT frames. A SEND to a peer without it is refused with `direct_not_accepted`
    /// (a client that never reads them must not be sent them).
    public static let directInbox: UInt32 = 0x0000_0008

    /// The client may set a last will (WILL, 0x1A). A broker that confirms it in WELCOME
    /// handles WILL and publishes `$SYS/peers/connected` and `$SYS/peers/disconnected`.
    public static let lastWill: UInt32 = 0x0000_0010

    /// The client understands MONITORED frames (0x1B) and may add monitor subscriptions
    /// (SUBSCRIBE flag 0x02). A client MUST NOT send that flag to a broker that did not confirm it.
    public static let monitor: UInt32 = 0x0000_0020

    /// The client passes and accepts file descriptors (PROTOCOL.md §4.22): it may send
    /// PUBLISH, SEND and REPLY with descriptors, and receives those sent to it. Without it the
    /// broker never sends it a descriptor: a message that carried some arrives flagged, with
    /// the count withheld.
    public static let descriptors: UInt32 = 0x0000_0040

    /// Every capability this implementation knows.
    public static let known: UInt32 = retained | requests | direct | directInbox | lastWill | monitor | descriptors
}
