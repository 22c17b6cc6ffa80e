/// Optional features a client announces in HELLO's `capabilities` and the broker confirms in
/// WELCOME's (PROTOCOL.md §4.1, §4.2). The broker uses a feature with a client only if both
/// sides name it, so an older client keeps working unchanged.
public enum Capabilities {
    /// The client understands RETAINED frames (0x13). Without it, the broker hands a new
    /// subscription the retained messages it matches as ordinary MESSAGE frames.
    public static let retained: UInt32 = 0x0000_0001

    /// Every capability this implementation knows.
    public static let known: UInt32 = retained
}
