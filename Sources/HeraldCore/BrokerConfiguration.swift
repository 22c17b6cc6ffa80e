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
    /// heraldd lowers it to what its file-descriptor limit allows (see ``DescriptorBudget``).
    public var maxConnections = BrokerConfiguration.defaultMaxConnections
    /// The connection limit when nothing else is said: high enough never to be the limit
    /// that matters on a desktop or server; the descriptor budget usually is.
    public static let defaultMaxConnections = 65_536
    /// Most connections one user id may have open at once, over all its processes: room
    /// for any desktop session, while one user's leak cannot take every connection.
    public var maxConnectionsPerUID = 4096
    /// Most subscriptions one user id may hold over all its connections (each connection is
    /// also held to ``maxSubscriptionsPerPeer``).
    public var maxSubscriptionsPerUID = 100_000
    /// Bytes that may be queued for one user id's connections together (each connection is
    /// also held to its output limit): a uid with many lagging subscribers cannot make the
    /// broker hold more than this for it. At the quota, each of its subscribers that is
    /// behind (more than ``laggingBacklog`` queued) is handled by its slow-consumer policy
    /// as if over its own limit; those that keep up are not affected.
    public var maxQueuedBytesPerUID = 256 << 20
    /// Most retained messages (topics with a current value) one user id may hold: far more
    /// than a desktop's state topics, while one user cannot fill the broker's memory.
    /// Over it, a retained PUBLISH is refused with `retained_quota_exceeded`; nothing is
    /// ever evicted to make room.
    public var maxRetainedMessagesPerUID = 10_000
    /// Bytes (topics and payloads) of retained messages one user id may hold.
    public var maxRetainedBytesPerUID = 64 << 20
    /// A subscriber with more than this queued is behind, not merely between two writes.
    public static let laggingBacklog = 64 << 10
    /// Most connections that may be in the handshake (connected, no WELCOME yet) at once.
    /// A connection that has not said HELLO costs a descriptor and a peer slot but has
    /// proven nothing, so a flood of them is refused before it can crowd out real clients.
    public var maxHandshakingConnections = 1024
    /// Most connections one user id may have in the handshake at once, so one user cannot
    /// use up ``maxHandshakingConnections`` for everybody else.
    public var maxHandshakingConnectionsPerUID = 64
    /// Seconds a frame may take to arrive completely once its first byte is in. A local
    /// client writes a whole frame in microseconds; one that stops half-way holds broker
    /// memory, so it is closed with `frame_timeout`.
    public var frameTimeout: Double = 10
    /// Bytes of partially received frames the broker holds for all connections together.
    /// The connection whose partial frame would go past it is closed with
    /// `input_budget_exceeded`; with ``frameTimeout`` this bounds what half-sent frames can cost.
    public var partialInputBudget = 64 << 20
    /// Most closing connections that may linger to finish writing why they are closed.
    /// Past it, a closing connection gets one write attempt and is closed at once, so
    /// lingering connections cannot become a sink for descriptors.
    public var maxLingeringConnections = 1024
    /// Default and maximum output limit per connection (queued bytes for a subscriber).
    /// A client may ask for less in HELLO, never more.
    public var outputLimit = ProtocolLimits.defaultOutputLimit
    /// Smallest output limit a client may ask for in HELLO (heraldd's `--output-limit` has the
    /// same floor): below it every burst would hit the slow-consumer policy.
    public static let minimumOutputLimit = 4096
    /// Slow-consumer policy for clients that leave the choice to the broker.
    public var defaultSlowConsumerPolicy = SlowConsumerPolicy.drop
    /// Slack beyond the output limit for the broker's own replies (OK, ERROR, PONG), so a
    /// client that stops reading still hears why it is being cut off. A peer that piles up
    /// more replies than this without reading is disconnected.
    public var controlReplyAllowance = 64 << 10
    /// User ids admitted besides the broker's own and root. Empty by default.
    public var extraAllowedUIDs: Set<UInt32> = []
    /// Who else may connect, and who may publish and subscribe to what (``Policy/open``
    /// unless heraldd is given a policy file).
    public var policy = Policy.open
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
    /// REQUESTs one connection may have waiting for a reply (`too_many_requests` past it).
    public var maxPendingRequestsPerPeer = 4096
    /// Passed file descriptors the broker holds for one uid's frames at a time, from
    /// receiving them until the last receiver's copy is written (PROTOCOL.md §4.22, §5.6).
    public var maxDescriptorsPerUID = 1024
    /// Passed file descriptors the broker holds in all (heraldd lowers it to what its
    /// descriptor limit leaves after the connections).
    public var maxDescriptorsHeld = 8192
    /// Name and version reported in WELCOME.
    public var serverName = "heraldd \(HeraldVersion.string)"

    /// Creates the default configuration.
    public init() {}
}
