import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One broker connection: the state that user tasks and the connection's I/O thread
/// (``IOLoop``) share, and the operations tasks perform on it.
///
/// Tasks never touch the socket. They append encoded frames to the outgoing buffer and
/// register what they wait for (request ids, ping tokens, subscriptions); the I/O thread
/// writes, reads, and completes. Two locks, never held together:
/// - `out` guards the outgoing buffer: the publish hot path takes only this one.
/// - `control` guards everything else: requests, subscriptions, events, the phase.
final class Connection: Sendable {
    /// Called once with the outcome of a request (SUBSCRIBE, UNSUBSCRIBE, PING).
    typealias Completion = @Sendable (Result<Void, HeraldError>) -> Void
    /// Called once with the outcome of a REQUEST: its RESPONSE, or why there is none.
    typealias CallCompletion = @Sendable (Result<Answer, HeraldError>) -> Void

    /// A RESPONSE as the I/O thread received it, with the descriptors it passed (if any).
    struct Answer: Sendable {
        var response: Response
        var attachment: MessageAttachment?
    }

    /// Where the connection is in its life.
    enum Phase: Sendable {
        /// Handshake in progress (no ``Bus`` exists yet).
        case connecting
        /// WELCOME received; requests are accepted.
        case open
        /// The broker went away and the I/O thread is reconnecting: requests are accepted and
        /// sent once connected again (see ``ReconnectPolicy``).
        case reconnecting
        /// close() was called: GOODBYE is queued, no new requests are accepted.
        case closing
        /// The I/O loop has finished: nil after close(), otherwise why the connection ended.
        case ended(HeraldError?)
    }

    /// The outgoing side, guarded by `out`.
    struct Outgoing {
        /// Encoded frames the I/O thread has not taken yet.
        var buffer = OutgoingBuffer()
        /// The I/O thread found nothing to write and may be asleep: the next appender wakes it.
        var ioIdle = false
        /// Set once no more frames are accepted: `.closed` after close(), else why the connection ended.
        var rejection: HeraldError?
        /// The last topic that passed validation, so a run of publishes on one topic validates it once.
        var lastTopic: [UInt8] = []
        /// Publishers waiting for the I/O thread to take the (full) buffer.
        var spaceWaiters: [CheckedContinuation<Void, Never>] = []
        /// While reconnecting: what happens to a publish (buffer up to a bound, or fail).
        var reconnecting: ReconnectPolicy.Publishing?
    }

    /// A request waiting for the broker's OK or ERROR.
    struct PendingRequest {
        /// The filter of a SUBSCRIBE, to name it in an error.
        var filter: String?
        /// The broker-side id a SUBSCRIBE creates: its OK starts delivery for that filter.
        var subscriptionID: UInt32?
        /// nil for fire-and-forget requests (an UNSUBSCRIBE sent from a deinit).
        var completion: Completion?
        /// Re-sent after a reconnect for a subscription the application already had: if the
        /// new broker refuses it, the subscription ends with the error.
        var resent = false
    }

    /// A REQUEST waiting for its answer, and when the requester stops waiting.
    struct PendingCall {
        var completion: CallCompletion
        /// Nanoseconds after ``Connection/epoch``.
        var deadline: Int64
    }

    /// One filter the broker holds for this connection.
    struct BrokerSubscription {
        var filter: TopicFilter
        var state: SubscriptionState
        /// A responder subscription: it receives CALL frames (requests to answer) and is
        /// never matched against MESSAGE topics.
        var responder = false
        /// The broker confirmed it. Messages are matched against confirmed filters only, so
        /// delivery starts exactly after the OK, and a subscription that is still being set up
        /// cannot fill its buffer (and pause reading) before its own OK was read.
        var acknowledged = false
    }

    /// Everything else, guarded by `control`.
    struct Control {
        var phase: Phase = .connecting
        /// Request ids live in the upper half of the u32 range so they are not mistaken for
        /// the PUBLISH ordinals the broker uses as request id in a publish ERROR.
        var nextRequestID: UInt32 = 0x8000_0000
        var nextSubscriptionID: UInt32 = 1
        var nextPingToken: UInt64 = 1
        var pendingRequests: [UInt32: PendingRequest] = [:]
        var pendingPings: [UInt64: Completion] = [:]
        /// REQUESTs waiting for their RESPONSE (or ERROR), by request id.
        var pendingCalls: [UInt32: PendingCall] = [:]
        /// Broker-side subscription id → filter and the subscription it feeds. The one place
        /// that knows what this connection is subscribed to (what a reconnect would re-send).
        var subscriptions: [UInt32: BrokerSubscription] = [:]
        /// A publish error not yet reported by a flush.
        var publishError: HeraldError?
        var eventSinks: [UInt64: AsyncStream<BusEvent>.Continuation] = [:]
        var nextSinkID: UInt64 = 0
        var threadExited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []

        mutating func takeRequestID() -> UInt32 {
            let id = nextRequestID
            nextRequestID = id == UInt32.max ? 0x8000_0000 : id + 1
            return id
        }
    }

    let address: BusAddress
    let options: BusOptions
    /// The socket. Only the I/O thread uses it; it closes it when it exits.
    let socket: Int32
    /// Eventfd that wakes the I/O thread. Closed in deinit, when nothing can signal it any more.
    let wakeFD: Int32
    let publishBufferLimit: Int
    let out = Mutex(Outgoing())
    let control = Mutex(Control())
    /// Where DIRECT frames go, if the bus accepts direct messages (``BusOptions/acceptsDirectMessages``):
    /// a subscription the broker does not know of (no id is sent), fed by peer id instead of topic.
    let directInbox: SubscriptionState?
    /// Bumped whenever `Control.subscriptions` changes; the I/O thread re-reads the table when it moves.
    let subscriptionsVersion = Atomic<UInt64>(0)
    /// Set by close() (or the Bus deinit); the I/O thread starts its bounded close.
    let closeRequested = Atomic<Bool>(false)
    /// Where request deadlines are counted from.
    let epoch = ContinuousClock.now
    /// The earliest deadline of a waiting request (nanoseconds after `epoch`; `Int64.max`
    /// for none), so the I/O thread times requests out without a task per request. Written
    /// under `control`, read by the I/O thread without it (an early value only wakes it once
    /// for nothing).
    let earliestCallDeadline = Atomic<Int64>(.max)

    init(address: BusAddress, options: BusOptions, socket: Int32, wakeFD: Int32) {
        self.address = address
        self.options = options
        self.socket = socket
        self.wakeFD = wakeFD
        self.publishBufferLimit = max(1, options.publishBufferLimit)
        directInbox = options.acceptsDirectMessages
            ? SubscriptionState(filters: [], ids: [], limit: options.subscriptionBufferLimit) : nil
    }

    deinit {
        Glibc.close(wakeFD)
    }

    /// Creates the socket and eventfd; nothing is connected yet.
    static func create(address: BusAddress, options: BusOptions) throws(HeraldError) -> Connection {
        let socket = herald_unix_stream_socket(0)
        guard socket >= 0 else {
            throw .brokerUnreachable(address: address.description, reason: "cannot create a socket: \(systemErrorDescription(herald_errno()))")
        }
        let wakeFD = herald_eventfd()
        guard wakeFD >= 0 else {
            let error = herald_errno()
            Glibc.close(socket)
            throw .brokerUnreachable(address: address.description, reason: "cannot create an eventfd: \(systemErrorDescription(error))")
        }
        return Connection(address: address, options: options, socket: socket, wakeFD: wakeFD)
    }

    /// Starts the I/O thread, which connects, performs the handshake and then runs the loop.
    func start() async -> Result<Welcome, HeraldError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<Welcome, HeraldError>, Never>) in
            let loop = Unmanaged.passRetained(IOLoop(connection: self, handshake: continuation))
            var thread = pthread_t()
            let rc = pthread_create(&thread, nil, { raw in
                Unmanaged<IOLoop>.fromOpaque(raw!).takeRetainedValue().run()
                return nil
            }, loop.toOpaque())
            if rc == 0 {
                pthread_detach(thread)
            } else {
                let loop = loop.takeRetainedValue()
                Glibc.close(socket)
                threadDidExit()
                loop.failToStart(.connectionLost("cannot start the I/O thread: \(systemErrorDescription(rc))"))
            }
        }
    }

    /// Wakes the I/O thread.
    @inline(__always)
    func wakeIO() {
        _ = herald_eventfd_signal(wakeFD)
    }
}
