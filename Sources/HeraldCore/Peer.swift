import HeraldProtocol

/// A peer's place in the broker's peer table: the handle the server knows a connection by.
/// A slot is reused for a new connection only after the server's loop iteration that
/// closed the old one has ended (``BrokerCore/endIteration()``).
public typealias PeerSlot = Int32

/// A peer is referenced by pointer on the hot path: no reference counting, no exclusivity
/// checks. The table in ``BrokerCore`` owns the memory and frees it only between batches.
typealias PeerPointer = UnsafeMutablePointer<Peer>

/// One connection's state inside the routing core. The core never touches the socket: the
/// server keeps the descriptor and its epoll interest, by slot.
struct Peer: ~Copyable {
    enum State {
        /// Connected, HELLO not yet received.
        case handshaking
        /// WELCOME sent; may publish and subscribe.
        case active
        /// Refused or ending: input is ignored, queued output is flushed, then closed.
        case closing
        /// The socket is closed; the memory is freed at the end of the current batch.
        case closed
    }

    let slot: PeerSlot
    let id: UInt64
    let credentials: PeerCredentials
    /// What deliveries name as the sender: `credentials`, with pid 0 once the process that
    /// connected has exited while the connection lives on (its pid may be reused).
    var senderCredentials: PeerCredentials
    /// Credentials plus supplementary groups: what the policy is checked against.
    let identity: PeerIdentity
    /// The policy as it applies to this peer (shared by peers with the same identity;
    /// replaced when the policy is reloaded).
    var access: PeerAccess
    var state = State.handshaking
    var name = ""
    /// The optional features in use with this peer: what its HELLO asked for and the broker knows.
    var capabilities: UInt32 = 0
    /// The broker is stopping and said GOODBYE: nothing is routed to this peer any more,
    /// but its frames are handled until it closes or ``closeDeadline`` (the grace period).
    var drainingForShutdown = false
    var policy = SlowConsumerPolicy.drop
    var outputLimit: Int
    /// When a closing peer's socket is closed even if it did not read everything (monotonic seconds).
    var closeDeadline = Double.infinity
    var handshakeDeadline: Double
    /// Why the peer is closing, for the disconnect log line.
    var closeReason = ""
    /// A closing peer that gets one attempt to write why, then is closed without lingering:
    /// refused connections, and any closing peer past the lingering limit.
    var closeImmediately = false
    /// Whether this peer counts against the lingering limit (closing, waiting to write).
    var countedAsLingering = false
    /// Whether the peer was ever welcomed (its disconnect is worth an info line).
    var wasWelcomed = false
    /// Whether this peer counts against the handshake limits (admitted, no WELCOME yet).
    var countedInHandshake = false
    /// Whether this peer counts against its uid's connection quota (it was admitted).
    var chargedToUser = false

    /// Bytes queued for this peer, written by the server. Every change to its size is also
    /// made to `queuedOutput`, its uid's total.
    var output = ByteQueue()
    /// Its uid's queued-output record (``QueuedOutput``), shared with the uid's other connections.
    let queuedOutput: QueuedOutputPointer
    /// Bytes received but not yet processed: a partial frame, or the rest of a batch while
    /// the peer is paused by backpressure. Counted in the core's partial-input budget.
    var input = ByteQueue()
    /// When the first byte of the frame at the head of `input` arrived (monotonic seconds);
    /// a frame still incomplete ``BrokerConfiguration/frameTimeout`` later is refused.
    var inputSince = 0.0

    /// Active subscriptions by client-chosen id, responder subscriptions included.
    var subscriptions: [UInt32: TopicFilter] = [:]

    // Route cache: the last topic this peer published and who receives it. Valid while
    // `routeGeneration` equals the subscription index's generation.
    var routeTopic = ByteQueue()
    var route = PeerList()
    var routeGeneration: UInt64 = .max

    /// 1-based ordinal of the last PUBLISH frame, so an ERROR can name the one it refers to.
    var publishOrdinal: UInt32 = 0

    // Slow-consumer bookkeeping.
    var pendingDroppedMessages: UInt64 = 0
    var pendingDroppedBytes: UInt64 = 0
    var totalDropped: UInt64 = 0
    /// When the last "dropping" warning was logged for this peer (rate limit).
    var lastDropLog = -Double.infinity
    /// Number of backpressure subscribers this peer (as publisher) currently waits for.
    var blockedOnCount = 0
    /// Publishers (by peer id) paused because this subscriber is over its limit.
    var pausedPublishers: [UInt64] = []

    // Marks used by the core to deduplicate without sets: equal to the core's current epoch
    // when the peer is already in the list being built.
    var routeMark: UInt64 = 0
    var touchedMark: UInt64 = 0

    // Per-peer counters for introspection.
    var messagesPublished: UInt64 = 0
    var messagesReceived: UInt64 = 0

    // Off the routing path, kept after everything a delivery touches (appended here so the
    // fields the hot loop reads stay where they were, on the same cache lines).
    /// The ids in `subscriptions` that are responder subscriptions (in the core's
    /// `responders` index rather than the routing index).
    var responderIDs: Set<UInt32> = []
    /// The ids in `subscriptions` that are monitor subscriptions (in both the routing index
    /// and the core's `monitors` index).
    var monitorIDs: Set<UInt32> = []
    /// The peer said GOODBYE: its last will is not published.
    var saidGoodbye = false
    /// The PUBLISH frame (header included) the broker sends for this peer if it goes
    /// without GOODBYE (WILL, `Presence`), or nil.
    var lastWill: [UInt8]?
    /// When the peer was welcomed, in wall-clock nanoseconds since the Unix epoch (introspection).
    var connectedAt: UInt64 = 0
    /// Bytes of output ever written (consumed): with `output.count`, where each queued frame
    /// lies in the stream, for ``passing``.
    var outputConsumed = 0
    /// Frames in `output` that carry descriptors, in stream order (`DescriptorPassing`).
    var passing: [PendingDescriptorPass] = []
    /// Descriptors received from the peer that no frame has taken yet, in arrival order.
    var receivedDescriptors: [Int32] = []

    init(
        slot: PeerSlot, id: UInt64, credentials: PeerCredentials, identity: PeerIdentity, access: PeerAccess,
        queuedOutput: QueuedOutputPointer, outputLimit: Int, handshakeDeadline: Double
    ) {
        self.slot = slot
        self.id = id
        self.credentials = credentials
        self.senderCredentials = credentials
        self.identity = identity
        self.access = access
        self.queuedOutput = queuedOutput
        self.outputLimit = outputLimit
        self.handshakeDeadline = handshakeDeadline
    }

    /// Whether the process that connected has exited while another holds the connection
    /// (no process that connects has pid 0, so the sender's pid 0 says so).
    var processGone: Bool { senderCredentials.pid == 0 }

    /// Bytes queued for all connections of this peer's uid.
    var queuedForUID: Int { queuedOutput.pointee.bytes }

    /// Adds `delta` (negative when output is written or discarded) to the uid's queued bytes.
    /// (A method rather than `peer.pointee.queuedOutput.pointee.bytes += …` at each call site:
    /// Swift 6.3's ThreadSanitizer instrumentation miscompiles that nested form.)
    func chargeQueued(_ delta: Int) {
        queuedOutput.pointee.bytes &+= delta
    }

    /// Whether the server should stop reading this peer's socket.
    var isReadPaused: Bool { blockedOnCount > 0 }

    /// Whether the session is open (in the handshake or active): not yet closing or closed.
    var isOpen: Bool { state == .handshaking || state == .active }
}
