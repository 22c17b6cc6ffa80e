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

    /// Where the connection is in its life.
    enum Phase: Sendable {
        /// Handshake in progress (no ``Bus`` exists yet).
        case connecting
        /// WELCOME received; requests are accepted.
        case open
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
    }

    /// A request waiting for the broker's OK or ERROR.
    struct PendingRequest {
        /// The filter of a SUBSCRIBE, to name it in an error.
        var filter: String?
        /// The broker-side id a SUBSCRIBE creates: its OK starts delivery for that filter.
        var subscriptionID: UInt32?
        /// nil for fire-and-forget requests (an UNSUBSCRIBE sent from a deinit).
        var completion: Completion?
    }

    /// One filter the broker holds for this connection.
    struct BrokerSubscription {
        var filter: TopicFilter
        var state: SubscriptionState
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
    /// Bumped whenever `Control.subscriptions` changes; the I/O thread re-reads the table when it moves.
    let subscriptionsVersion = Atomic<UInt64>(0)
    /// Set by close() (or the Bus deinit); the I/O thread starts its bounded close.
    let closeRequested = Atomic<Bool>(false)

    private init(address: BusAddress, options: BusOptions, socket: Int32, wakeFD: Int32) {
        self.address = address
        self.options = options
        self.socket = socket
        self.wakeFD = wakeFD
        self.publishBufferLimit = max(1, options.publishBufferLimit)
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

    // MARK: - Publishing (hot path)

    /// Validates and appends one PUBLISH frame under one lock acquisition.
    @inline(__always)
    func tryPublish(
        topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, maxTopicLength: Int, maxFrameSize: Int
    ) -> PublishAttempt {
        let frameLength = FrameHeader.size + topic.count + payload.count
        guard frameLength <= maxFrameSize else { return .failed(.messageTooLarge(size: frameLength, maximum: maxFrameSize)) }
        let limit = publishBufferLimit
        let (attempt, wake) = out.withLock { state -> (PublishAttempt, Bool) in
            if let rejection = state.rejection { return (.failed(rejection), false) }
            let known =
                !topic.isEmpty && state.lastTopic.count == topic.count
                && state.lastTopic.withUnsafeBytes { memcmp($0.baseAddress!, topic.baseAddress!, topic.count) == 0 }
            if !known {
                if let error = Topic.validatePublishable(topic, maxLength: maxTopicLength) {
                    return (.failed(.invalidTopic(String(decoding: topic, as: UTF8.self), reason: "it \(error)")), false)
                }
                state.lastTopic.removeAll(keepingCapacity: true)
                state.lastTopic.append(contentsOf: topic)
            }
            if state.buffer.count + frameLength > limit && !state.buffer.isEmpty { return (.full, false) }
            state.buffer.appendPublish(topic: topic, payload: payload)
            let wake = state.ioIdle
            state.ioIdle = false
            return (.queued, wake)
        }
        if wake { wakeIO() }
        return attempt
    }

    /// Suspends until the I/O thread has taken the outgoing buffer (or the connection ended).
    func waitForPublishSpace() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = out.withLock { state in
                if state.rejection != nil || state.buffer.isEmpty { return true }
                state.spaceWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Appends encoded frames. Returns why not if the connection accepts no more frames.
    @discardableResult
    func enqueue(_ bytes: [UInt8]) -> HeraldError? {
        let (rejection, wake) = out.withLock { state -> (HeraldError?, Bool) in
            if let rejection = state.rejection { return (rejection, false) }
            state.buffer.append(bytes)
            let wake = state.ioIdle
            state.ioIdle = false
            return (nil, wake)
        }
        if wake { wakeIO() }
        return rejection
    }

    // MARK: - Requests

    /// The error a new request fails with in `phase`, or nil if requests are accepted.
    private static func refusal(in phase: Phase) -> HeraldError? {
        switch phase {
        case .open: nil
        case .connecting, .closing: .closed
        case .ended(let reason): reason ?? .closed
        }
    }

    /// Reserves `count` fresh broker-side subscription ids.
    func allocateSubscriptionIDs(_ count: Int) -> [UInt32] {
        control.withLock { state in
            (0..<count).map { _ in
                let id = state.nextSubscriptionID
                state.nextSubscriptionID = id == UInt32.max ? 1 : id + 1
                return id
            }
        }
    }

    /// Registers `subscription` for delivery and sends one SUBSCRIBE per filter;
    /// `completion` runs once all are acknowledged or the first fails.
    func subscribe(_ subscription: SubscriptionState, completion: @escaping Completion) {
        let group = RequestGroup(count: subscription.filters.count, completion: completion)
        let requestCompletion: Completion = { @Sendable result in group.complete(result) }
        let outcome = control.withLock { state -> Result<[UInt8], HeraldError> in
            if let refusal = Connection.refusal(in: state.phase) { return .failure(refusal) }
            var frames: [UInt8] = []
            for (id, filter) in zip(subscription.ids, subscription.filters) {
                let requestID = state.takeRequestID()
                state.pendingRequests[requestID] = PendingRequest(
                    filter: filter.text, subscriptionID: id, completion: requestCompletion)
                state.subscriptions[id] = BrokerSubscription(filter: filter, state: subscription)
                FrameEncoder.encode(
                    .subscribe(Subscribe(requestID: requestID, subscriptionID: id, filter: filter.text)), into: &frames)
            }
            subscriptionsVersion.add(1, ordering: .releasing)
            return .success(frames)
        }
        switch outcome {
        case .success(let frames):
            // A rejection here means close() raced us: the I/O thread fails the pending requests when it ends.
            enqueue(frames)
        case .failure(let refusal):
            completion(.failure(refusal))
        }
    }

    /// Stops delivery to `subscription` at once and sends UNSUBSCRIBE for its filters the
    /// broker still holds; `completion` (if any) runs once the broker acknowledged them.
    func unsubscribe(_ subscription: SubscriptionState, completion: Completion?) {
        let group = completion.map { RequestGroup(count: subscription.ids.count, completion: $0) }
        let requestCompletion: Completion? = group.map { group in { @Sendable result in group.complete(result) } }
        let (frames, requestCount) = control.withLock { state -> ([UInt8], Int) in
            var frames: [UInt8] = []
            var requestCount = 0
            var removed = false
            for id in subscription.ids where state.subscriptions.removeValue(forKey: id) != nil {
                removed = true
                guard case .open = state.phase else { continue }
                let requestID = state.takeRequestID()
                state.pendingRequests[requestID] = PendingRequest(filter: nil, subscriptionID: nil, completion: requestCompletion)
                FrameEncoder.encode(.unsubscribe(Unsubscribe(requestID: requestID, subscriptionID: id)), into: &frames)
                requestCount += 1
            }
            if removed { subscriptionsVersion.add(1, ordering: .releasing) }
            return (frames, requestCount)
        }
        if requestCount > 0 { enqueue(frames) }
        group?.skip(subscription.ids.count - requestCount)
    }

    /// Sends a PING; `completion` runs when its PONG arrives, with any publish error reported before it.
    func ping(completion: @escaping Completion) {
        let outcome = control.withLock { state -> Result<UInt64, HeraldError> in
            if let refusal = Connection.refusal(in: state.phase) { return .failure(refusal) }
            let token = state.nextPingToken
            state.nextPingToken &+= 1
            state.pendingPings[token] = completion
            return .success(token)
        }
        switch outcome {
        case .success(let token): enqueue(FrameEncoder.encode(.ping(token: token)))
        case .failure(let error): completion(.failure(error))
        }
    }

    // MARK: - Closing

    /// Queues GOODBYE as the last frame and starts the I/O thread's bounded close. Idempotent;
    /// safe to call from a deinit.
    func requestClose() {
        let first = control.withLock { state -> Bool in
            guard case .open = state.phase else { return false }
            state.phase = .closing
            return true
        }
        guard first else { return }
        let waiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.rejection == nil {
                state.buffer.append(.goodbye(Goodbye(reason: 0, message: "client closing")))
                state.rejection = .closed
            }
            state.ioIdle = false
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
        closeRequested.store(true, ordering: .releasing)
        wakeIO()
    }

    /// Suspends until the I/O thread has exited (and closed the socket).
    func waitUntilExited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = control.withLock { state in
                if state.threadExited { return true }
                state.exitWaiters.append(continuation)
                return false
            }
            if exited { continuation.resume() }
        }
    }

    /// The current phase.
    var phase: Phase { control.withLock { $0.phase } }

    // MARK: - Events

    /// A new stream of connection events; see ``Bus/events()``.
    func events() -> AsyncStream<BusEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusEvent.self, bufferingPolicy: .bufferingNewest(4096))
        enum Registration { case registered(UInt64), ended(HeraldError?) }
        let registration = control.withLock { state -> Registration in
            if case .ended(let reason) = state.phase { return .ended(reason) }
            let id = state.nextSinkID
            state.nextSinkID += 1
            state.eventSinks[id] = continuation
            return .registered(id)
        }
        switch registration {
        case .registered(let id):
            continuation.onTermination = { [weak self] _ in
                _ = self?.control.withLock { $0.eventSinks.removeValue(forKey: id) }
            }
        case .ended(let reason):
            continuation.yield(.disconnected(reason))
            continuation.finish()
        }
        return stream
    }

    // MARK: - Called by the I/O thread

    /// Marks the handshake done: requests are accepted from now on.
    func didOpen() {
        control.withLock { $0.phase = .open }
    }

    /// Swaps the outgoing buffer into `writing` (which must be empty). Returns false, and
    /// marks the I/O thread idle, if there is nothing to write.
    func takeOutgoing(into writing: inout OutgoingBuffer) -> Bool {
        let (taken, waiters) = out.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            if state.buffer.isEmpty {
                state.ioIdle = true
                return (false, [])
            }
            swap(&state.buffer, &writing)
            state.ioIdle = false
            let waiters = state.spaceWaiters
            if !waiters.isEmpty { state.spaceWaiters = [] }
            return (true, waiters)
        }
        for waiter in waiters { waiter.resume() }
        return taken
    }

    /// The subscriptions messages are currently dispatched to, each with its confirmed filters.
    func activeSubscriptions() -> [(state: SubscriptionState, filters: [TopicFilter])] {
        control.withLock { state in
            var index: [ObjectIdentifier: Int] = [:]
            var result: [(state: SubscriptionState, filters: [TopicFilter])] = []
            for entry in state.subscriptions.values where entry.acknowledged {
                let key = ObjectIdentifier(entry.state)
                if let position = index[key] {
                    result[position].filters.append(entry.filter)
                } else {
                    index[key] = result.count
                    result.append((entry.state, [entry.filter]))
                }
            }
            return result
        }
    }

    /// Whether a reply (OK, ERROR, PONG) is awaited. While one is, the I/O thread keeps
    /// reading even if a subscription is over its buffer limit: what precedes the reply is
    /// bounded by the broker's output limit, and a consumer may be waiting for the reply
    /// before it drains its subscription.
    var awaitsReply: Bool {
        control.withLock { !$0.pendingRequests.isEmpty || !$0.pendingPings.isEmpty }
    }

    /// What answering a request changed.
    enum RequestAnswer {
        /// No request has that id.
        case unknown
        case answered
        /// A SUBSCRIBE succeeded: the dispatch table changed.
        case subscribed
    }

    /// Completes the request the broker answered.
    func completeRequest(_ requestID: UInt32, error: ErrorFrame?) -> RequestAnswer {
        let (request, subscribed) = control.withLock { state -> (PendingRequest?, Bool) in
            guard let request = state.pendingRequests.removeValue(forKey: requestID) else { return (nil, false) }
            guard error == nil, let id = request.subscriptionID, state.subscriptions[id] != nil else { return (request, false) }
            state.subscriptions[id]!.acknowledged = true
            subscriptionsVersion.add(1, ordering: .releasing)
            return (request, true)
        }
        guard let request else { return .unknown }
        if let error {
            request.completion?(.failure(HeraldError.fromBroker(error, filter: request.filter)))
        } else {
            request.completion?(.success(()))
        }
        return subscribed ? .subscribed : .answered
    }

    /// Completes the flush waiting for `token`, failing it with a publish error reported since the last flush.
    func completePing(_ token: UInt64) {
        let (completion, publishError) = control.withLock { state -> (Completion?, HeraldError?) in
            guard let completion = state.pendingPings.removeValue(forKey: token) else { return (nil, nil) }
            let error = state.publishError
            state.publishError = nil
            return (completion, error)
        }
        guard let completion else { return }
        completion(publishError.map { .failure($0) } ?? .success(()))
    }

    /// Records a refused PUBLISH for the next flush and reports it as an event.
    func recordPublishError(_ error: HeraldError) {
        control.withLock { $0.publishError = error }
        emit(.publishFailed(error))
    }

    /// Sends `event` to every event stream.
    func emit(_ event: BusEvent) {
        let sinks = control.withLock { Array($0.eventSinks.values) }
        for sink in sinks { sink.yield(event) }
    }

    /// Ends the connection: rejects new work, fails everything pending, ends every
    /// subscription (with an error if `failSubscriptions`) and reports `.disconnected`.
    /// `reason` is nil for a close this side asked for.
    func finish(reason: HeraldError?, failSubscriptions: Bool) {
        let failure = reason ?? .closed
        let spaceWaiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.rejection == nil { state.rejection = failure }
            state.buffer.removeAll()
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return waiters
        }
        for waiter in spaceWaiters { waiter.resume() }
        let (requests, pings, subscriptions, sinks) = control.withLock { state in
            state.phase = .ended(reason)
            defer {
                state.pendingRequests = [:]
                state.pendingPings = [:]
                state.subscriptions = [:]
                state.eventSinks = [:]
            }
            return (
                Array(state.pendingRequests.values), Array(state.pendingPings.values),
                state.subscriptions.values.map(\.state), Array(state.eventSinks.values)
            )
        }
        subscriptionsVersion.add(1, ordering: .releasing)
        for request in requests { request.completion?(.failure(failure)) }
        for ping in pings { ping(.failure(failure)) }
        let end: SubscriptionState.End = failSubscriptions && reason != nil ? .failed(failure) : .finished
        for subscription in subscriptions { subscription.end(end) }
        for sink in sinks {
            sink.yield(.disconnected(reason))
            sink.finish()
        }
    }

    /// The I/O thread has exited: wakes everyone waiting in close().
    func threadDidExit() {
        let waiters = control.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.threadExited = true
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Collects the answers to several requests (one SUBSCRIBE or UNSUBSCRIBE per filter) and
/// reports once: success when all succeeded, or the first failure.
final class RequestGroup: Sendable {
    private let remaining: Mutex<Int?>
    private let completion: Connection.Completion

    init(count: Int, completion: @escaping Connection.Completion) {
        remaining = Mutex(count)
        self.completion = completion
        if count == 0 { complete(.success(())) }
    }

    /// Records one answer.
    func complete(_ result: Result<Void, HeraldError>) {
        let fire = remaining.withLock { remaining -> Bool in
            guard let count = remaining else { return false }
            if case .failure = result {
                remaining = nil
                return true
            }
            remaining = count - 1
            if count - 1 <= 0 {
                remaining = nil
                return true
            }
            return false
        }
        if fire { completion(result) }
    }

    /// Counts `count` requests that were never sent as succeeded.
    func skip(_ count: Int) {
        for _ in 0..<max(0, count) { complete(.success(())) }
    }
}

/// Outcome of one attempt to append a PUBLISH.
@usableFromInline
enum PublishAttempt {
    /// Appended to the outgoing buffer.
    case queued
    /// The outgoing buffer is at its limit: wait for space and try again.
    case full
    /// Refused; nothing was sent.
    case failed(HeraldError)
}
