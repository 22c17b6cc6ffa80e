import HeraldProtocol

/// Everything that shapes a broker's behaviour, with defaults that never get in the way of
/// normal use. Limits are named here with the reason for their value.
public struct BrokerConfiguration: Sendable {
    /// Largest frame, header included, accepted from a client.
    public var maxFrameSize = ProtocolLimits.defaultMaxFrameSize
    /// Longest topic or filter in bytes.
    public var maxTopicLength = ProtocolLimits.defaultMaxTopicLength
    /// Most subscriptions one connection may hold.
    public var maxSubscriptionsPerPeer = ProtocolLimits.defaultMaxSubscriptions
    /// Most simultaneous connections; further ones get a fatal `too_many_connections`.
    public var maxConnections = 65_536
    /// Default and maximum output limit per connection (queued bytes for a subscriber).
    /// A client may ask for less in HELLO, never more.
    public var outputLimit = ProtocolLimits.defaultOutputLimit
    /// Slow-consumer policy for clients that leave the choice to the broker.
    public var defaultSlowConsumerPolicy = SlowConsumerPolicy.drop
    /// Slack beyond the output limit for the broker's own replies (OK, ERROR, PONG), so a
    /// client that stops reading still hears why it is being cut off. A peer that piles up
    /// more replies than this without reading is disconnected.
    public var controlReplyAllowance = 64 << 10
    /// User ids admitted besides the broker's own and root. Empty by default.
    public var extraAllowedUIDs: Set<UInt32> = []
    /// Seconds a connection may take to send HELLO.
    public var handshakeTimeout: Double = 10
    /// Seconds a closing peer gets to read what is queued for it before the socket is closed.
    public var closeLinger: Double = 2
    /// Seconds a subscriber disconnected as a slow consumer gets to read the ERROR that says
    /// why. Its queue was cut to the frame in progress, so holding it costs one socket and
    /// a few bytes; a stalled process that resumes within this time still learns the reason.
    public var slowConsumerLinger: Double = 30
    /// Seconds a stopping broker spends flushing queued output before it exits regardless.
    public var shutdownGrace: Double = 5
    /// Name and version reported in WELCOME.
    public var serverName = "heraldd \(HeraldVersion.string)"

    /// Creates the default configuration.
    public init() {}
}

/// The version of this Herald build.
public enum HeraldVersion {
    /// Semantic version string.
    public static let string = "0.1.0"
}
