import HeraldProtocol
import Logging

/// The routing core: admission, handshake, subscriptions, routing and slow-consumer
/// handling for every peer. No I/O happens here, so all of it runs in unit tests, fuzzing
/// and benchmarks without sockets (``InMemoryBroker``), and time comes in as an argument.
///
/// The epoll server drives it through a narrow interface, by ``PeerSlot``: a connection is
/// admitted (``refusalFrame(for:now:)``, ``connect(credentials:groups:now:)``), its bytes go in
/// (``receive(_:_:now:)``), ``takeWork(into:)`` says which peers have something to write or
/// may be read again, ``pendingOutput(of:)`` and ``consumeOutput(of:_:)`` are what to write,
/// ``finishWriting(_:)`` and ``ended(_:reason:now:)`` say when to close, and
/// ``expireDeadlines(now:)`` runs the timers. The concepts behind it live in one file each:
/// `Admission`, `InputReassembly`, `Session`, `Router`, `SlowConsumer`, `Closing`,
/// `Deadlines`, `Shutdown`, over the `PeerTable` and the `SubscriptionIndex`; whole features
/// have rooms of their own: `Policy/`, `Retained/`, `Requests/`, `Direct/`, `Presence/`,
/// `Introspection/`, `Monitoring/`.
///
/// Memory safety: peers are reached through ``PeerPointer`` everywhere in the core, never
/// retained or copied; ``PeerTable`` owns them and frees a removed one only at
/// ``endIteration()``, so a pointer taken during a call stays valid for that call. Raw
/// bytes are handled in ``ByteQueue`` and on the two hot paths, `Router` and
/// `InputReassembly`, each of which says so at its top.
///
/// Single-threaded by design: the server owns it and calls it from one thread.
public final class BrokerCore {
    /// Replaced as a whole when heraldd reloads its configuration (``reload(_:)``).
    var configuration: BrokerConfiguration
    let logger: Logger
    let brokerPID: UInt32
    let brokerUID: UInt32
    /// The broker's group id: with its pid and uid, the sender of what the broker publishes itself.
    let brokerGID: UInt32
    /// Counters for introspection.
    public internal(set) var statistics = BrokerStatistics()

    var peers = PeerTable()
    let index = SubscriptionIndex()
    /// Responder subscriptions (SUBSCRIBE flag 0x01), apart from `index`: requests are
    /// matched here, and publishes never look at it (`RequestRouting`).
    let responders = SubscriptionIndex()
    /// Requests handed to a responder and waiting for its reply (`RequestRouting`).
    var requests = RequestTable()
    /// Monitor subscriptions (SUBSCRIBE flag 0x02), also in `index`: requests, replies and
    /// direct messages are copied to those matching (`Monitoring`).
    let monitors = SubscriptionIndex()
    /// Which matching responder gets the next request (they take turns).
    var responderTurn: UInt64 = 0

    /// Epoch for deduplicating subscribers while a route is built.
    var routeEpoch: UInt64 = 0
    /// Epoch for deduplicating ``touched`` within one batch.
    var batchEpoch: UInt64 = 1
    /// Peers with new output (or newly closing) since the work was last taken.
    var touched: [PeerSlot] = []
    /// Publishers whose reading may resume because the subscribers they waited for drained.
    var resumed: [PeerSlot] = []

    /// Monotonic seconds of the call being handled: every entry point that can start a
    /// timer takes `now` and records it here, so the core never reads a clock itself.
    var clock = 0.0
    /// Connections admitted but not yet welcomed, in total and by uid (handshake limits).
    var handshakingCount = 0
    var handshakingByUID: [UInt32: Int] = [:]
    /// Connections and subscriptions per uid, for the per-uid quotas (`UserAccounting`).
    var usageByUID: [UInt32: UserUsage] = [:]
    /// Queued output per uid (`UserAccounting`), shared by pointer with the uid's connections.
    var queuedOutputByUID: [UInt32: QueuedOutputPointer] = [:]
    /// Bytes held in every peer's `input` (partial frames, paused batches): the partial-input budget.
    var inputBytesHeld = 0
    /// Closing peers that linger to write why they are closed.
    var lingeringCount = 0
    /// Set once shutdown begins.
    var shuttingDown = false
    /// Refused connections are logged at most once a second (a flood must not flood the log).
    var refusalLog = LogRateLimiter(interval: 1)
    /// The policy as it applies to each identity seen, computed once each (`PolicyEnforcement`).
    var accessByIdentity: [PeerIdentity: PeerAccess] = [:]
    /// Policy denials are logged at most once a second.
    var denialLog = LogRateLimiter(interval: 1)
    /// The last refusal and its encoded ERROR, reused while a flood gets the same answer.
    var lastRefusal: (refusal: AdmissionRefusal, frame: [UInt8])?
    /// Each topic's retained message (`RetainedPublishing`).
    public internal(set) var retained = RetainedStore()
    /// Counts changes to ``retained`` (stored or cleared), so heraldd saves it only when it changed.
    public internal(set) var retainedChanges: UInt64 = 0
    /// Wall-clock nanoseconds since the Unix epoch, read only when a retained message is
    /// stored (its `retained_at`). The server sets it (CLOCK_REALTIME); like `now`, the core
    /// never reads a clock itself.
    public var wallClock: () -> UInt64 = { 0 }
    /// The name of process `pid` (its `comm`), for introspection; the server reads it from
    /// /proc, the core does no I/O.
    public var processName: (UInt32) -> String? = { _ in nil }
    /// Closes a file descriptor the broker holds (PROTOCOL.md §4.22): the server sets it to
    /// `close`, the core does no I/O.
    public var closeDescriptor: (Int32) -> Void = { _ in }
    /// The descriptors of the frame being handled, while its deliveries are queued (`DescriptorPassing`).
    var attaching: DescriptorSet?
    /// Passed descriptors held, by the uid of the peer that sent them.
    var descriptorsHeldByUID: [UInt32: Int] = [:]
    /// Scratch: each route member's output end before a PUBLISH with descriptors is routed.
    var descriptorRouteEnds: [Int] = []

    /// Creates a core with `configuration`, reporting `brokerPID`/`brokerUID` in WELCOME (and
    /// with `brokerGID`, as the sender of the `$SYS` messages it publishes).
    public init(configuration: BrokerConfiguration, logger: Logger, brokerPID: UInt32, brokerUID: UInt32, brokerGID: UInt32 = 0) {
        self.configuration = configuration
        self.logger = logger
        self.brokerPID = brokerPID
        self.brokerUID = brokerUID
        self.brokerGID = brokerGID
        touched.reserveCapacity(1024)
    }

    deinit {
        for record in queuedOutputByUID.values {
            record.deinitialize(count: 1)
            record.deallocate()
        }
    }

    /// Connections in the table, closing ones included.
    public var peerCount: Int { peers.count }
    var subscriptionCount: Int { index.count }

    @inline(__always)
    func touch(_ peer: PeerPointer) {
        if peer.pointee.touchedMark != batchEpoch {
            peer.pointee.touchedMark = batchEpoch
            touched.append(peer.pointee.slot)
        }
    }

    // MARK: - The server's interface

    /// Registers an admitted connection and returns its slot. (A refused one is closing
    /// already, with its ERROR queued; the server avoids that by asking
    /// ``refusalFrame(for:now:)`` first.)
    public func connect(credentials: PeerCredentials, groups: [UInt32] = [], now: Double) -> PeerSlot {
        connectPeer(credentials: credentials, groups: groups, now: now).pointee.slot
    }

    /// Bytes read from the peer in `slot` at `now`.
    public func receive(_ slot: PeerSlot, _ bytes: UnsafeRawBufferPointer, now: Double) {
        guard let peer = peers[slot] else { return }
        receive(peer, bytes, now: now)
    }

    /// Whether and how the server should read the peer in `slot`.
    public func readState(of slot: PeerSlot) -> PeerReadState {
        guard let peer = peers[slot] else { return .gone }
        switch peer.pointee.state {
        case .handshaking, .active: return peer.pointee.isReadPaused ? .paused : .reading
        case .closing: return .discarding
        case .closed: return .gone
        }
    }

    /// The peer's socket reached end of stream (or failed) at `now`. Returns true if the
    /// server should close it now; false if output is still queued for it, which the
    /// server writes before ``finishWriting(_:)`` says to close.
    public func ended(_ slot: PeerSlot, reason: String, now: Double) -> Bool {
        guard let peer = peers[slot] else { return false }
        guard peer.pointee.output.isEmpty else {
            beginClosing(peer, reason: reason, now: now)
            return false
        }
        return true
    }

    /// What is queued for the peer in `slot`: valid until the next call into the core.
    public func pendingOutput(of slot: PeerSlot) -> UnsafeRawBufferPointer {
        guard let peer = peers[slot], !peer.pointee.output.isEmpty else { return UnsafeRawBufferPointer(start: nil, count: 0) }
        return UnsafeRawBufferPointer(start: peer.pointee.output.readPointer, count: peer.pointee.output.count)
    }

    /// The server wrote the first `count` bytes of ``pendingOutput(of:)``.
    public func consumeOutput(of slot: PeerSlot, _ count: Int) {
        guard let peer = peers[slot] else { return }
        consumeOutput(of: peer, count)
    }

    /// The server has written what the socket took. Sends a pending drop notice and resumes
    /// publishers if the peer drained enough; returns the reason to close the socket now
    /// (a closing peer whose output is written, or that may not linger), or nil.
    public func finishWriting(_ slot: PeerSlot) -> String? {
        guard let peer = peers[slot] else { return nil }
        if peer.pointee.state == .closing && (peer.pointee.output.isEmpty || peer.pointee.closeImmediately) {
            return peer.pointee.closeReason
        }
        didWrite(peer)
        return nil
    }

    /// The process that opened the connection in `slot` exited, but the connection is still
    /// open: a process that inherited the socket (or was passed it) holds it now. Its
    /// deliveries name pid 0 from now on, so a reused pid is never taken for the sender;
    /// uid and gid stay (they are what the kernel checked at connect). Logged and counted.
    public func processExited(_ slot: PeerSlot) {
        guard let peer = peers[slot], peer.pointee.isOpen, !peer.pointee.processGone else { return }
        peer.pointee.senderCredentials.pid = 0
        statistics.connectionsOutlivingProcess &+= 1
        logger.notice(
            "the process that opened this connection exited; another process holds it now, and its messages name pid 0",
            metadata: peerMetadata(peer, [:]))
    }

    /// Refuses the connection in `slot` with a fatal ERROR that gets one write attempt.
    public func refuse(_ slot: PeerSlot, _ code: ErrorCode, _ message: String) {
        guard let peer = peers[slot] else { return }
        refuse(peer, code, message)
    }

    /// The server closed the socket of the peer in `slot`.
    public func remove(_ slot: PeerSlot, reason: String) {
        guard let peer = peers[slot] else { return }
        remove(peer, reason: reason)
    }

    /// Continues a publisher that ``takeWork(into:)`` listed as resumed: processes the input
    /// kept while it was paused. Returns whether the server should read its socket again.
    public func resumeReading(_ slot: PeerSlot, now: Double) -> Bool {
        guard let peer = peers[slot], peer.pointee.state == .active else { return false }
        processBufferedInput(peer, now: now)
        checkLeftoverDescriptors(peer)
        return !peer.pointee.isReadPaused && peer.pointee.state == .active
    }

    /// Hands over the peers with new output and the publishers that may be read again, and
    /// starts a new batch (a peer touched while they are written is listed again). The
    /// lists are swapped with `work`'s (which must be empty), so nothing is reallocated on
    /// this per-wakeup path.
    public func takeWork(into work: inout BrokerWork) {
        batchEpoch &+= 1
        swap(&work.writable, &touched)
        swap(&work.resumed, &resumed)
    }

    /// Whether peers have output to write or publishers to resume: the server must not
    /// sleep in `epoll_wait` then.
    public var hasPendingWork: Bool { !touched.isEmpty || !resumed.isEmpty }

    /// Ends an iteration of the server's loop: frees the peers removed during it, whose
    /// slots the server no longer holds.
    public func endIteration() {
        guard peers.hasReleased else { return }
        touched.removeAll { peers[$0] == nil }
        resumed.removeAll { peers[$0] == nil }
        peers.freeReleased()
    }

    /// Ends a batch without a server: forgets the pending work and frees removed peers.
    func endBatch() {
        batchEpoch &+= 1
        touched.removeAll(keepingCapacity: true)
        resumed.removeAll(keepingCapacity: true)
        endIteration()
    }
}

/// How the server should treat a peer's socket when it is readable.
public enum PeerReadState: Equatable, Sendable {
    /// Read and hand the bytes to ``BrokerCore/receive(_:_:now:)``.
    case reading
    /// Leave the bytes in the socket: the publisher is paused for a backpressure subscriber
    /// (``BrokerWork/resumed`` lists it when it may go on).
    case paused
    /// Closing: read and discard, only to notice end of stream.
    case discarding
    /// No such peer (closed this iteration).
    case gone
}

/// The peers the server has to attend to after the core did some work.
public struct BrokerWork: Sendable {
    /// Peers with output to write (or that became closing), each listed once.
    public var writable: [PeerSlot] = []
    /// Publishers whose subscribers drained: call ``BrokerCore/resumeReading(_:now:)``.
    public var resumed: [PeerSlot] = []

    /// Empty lists.
    public init() {}

    /// Empties both lists, keeping their storage for the next wakeup.
    public mutating func removeAll() {
        writable.removeAll(keepingCapacity: true)
        resumed.removeAll(keepingCapacity: true)
    }
}
