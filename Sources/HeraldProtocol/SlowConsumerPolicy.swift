/// What the broker does when a subscriber falls more than its output limit behind.
/// Chosen by each client in HELLO.
public enum SlowConsumerPolicy: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// New messages for the subscriber are dropped and counted; once it catches up it
    /// receives a DROPPED frame saying how many it lost. Publishers are never slowed.
    case drop = 0
    /// The subscriber is sent a fatal ERROR (``ErrorCode/slowConsumer``) and disconnected.
    case disconnect = 1
    /// The broker stops reading from publishers that feed the subscriber until it has
    /// drained: nothing is lost, publishers are slowed to the subscriber's pace.
    case backpressure = 2

    /// The HELLO value that leaves the choice to the broker's configured default.
    public static let brokerDefaultWireValue: UInt8 = 0xFF

    public var description: String {
        switch self {
        case .drop: "drop"
        case .disconnect: "disconnect"
        case .backpressure: "backpressure"
        }
    }
}
