import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The I/O thread of one connection: connects, performs the handshake, then runs an epoll
/// loop over the socket and the wake-up eventfd until the connection ends.
///
/// Everything here runs on that one thread, so the class needs no locks of its own; it
/// talks to tasks only through ``Connection`` (outgoing buffer, pending requests) and
/// ``SubscriptionState`` (delivery). Hot path: `readAvailable` → `parseFrames`, which reads
/// MESSAGE frames in place from the read buffer (unsafe pointers, fenced in those two
/// functions) and copies each matching frame, as it is, into the subscription's
/// ``DeliveryBuffer``; the consuming task makes the ``Message`` values.
final class IOLoop {
    /// How long close() waits for the broker's GOODBYE before giving up.
    static let closeTimeout: Duration = .seconds(2)
    /// Initial read buffer size; it grows only for a frame larger than this.
    static let readBufferSize = 256 << 10
    /// Socket reads per readiness event before the loop services writes again.
    static let readsPerEvent = 8

    private static let wakeToken: UInt64 = 0
    private static let socketToken: UInt64 = 1
    private static let eventIn = UInt32(truncatingIfNeeded: HERALD_EV_IN)
    private static let eventOut = UInt32(truncatingIfNeeded: HERALD_EV_OUT)
    private static let eventErr = UInt32(truncatingIfNeeded: HERALD_EV_ERR)
    private static let eventHup = UInt32(truncatingIfNeeded: HERALD_EV_HUP)
    private static let eventRdHup = UInt32(truncatingIfNeeded: HERALD_EV_RDHUP)

    /// A subscription as the I/O thread sees it: the shared state plus the frames staged
    /// for it during the current batch.
    private struct Target {
        let state: SubscriptionState
        /// The filters the broker confirmed.
        let filters: [TopicFilter]
        var staged: DeliveryBuffer
    }

    private let connection: Connection
    private let socket: Int32
    private var handshake: CheckedContinuation<Result<Welcome, HeraldError>, Never>?
    private var maxFrameSize = ProtocolLimits.maxFrameSizeCeiling
    private var epollFD: Int32 = -1

    private var readBuffer: UnsafeMutableRawPointer
    private var readCapacity: Int
    private var readStart = 0
    private var readEnd = 0

    private var writing = OutgoingBuffer()
    private var writeOffset = 0
    /// The last write hit EAGAIN: wait for EPOLLOUT.
    private var waitingForWritable = false
    private var registeredEvents: UInt32 = 0

    private var targets: [Target] = []
    private var touched: [Int] = []
    private var knownSubscriptionsVersion: UInt64 = .max
    /// One-entry route cache: the last topic seen and the targets it matched.
    private var cachedTopic: [UInt8] = []
    private var cachedTargets: [Int] = []
    private var cacheValid = false
    /// Counts the routes made, to tag runs of messages on one topic.
    private var topicRuns = 0

    /// Messages the broker reported dropped that no delivered message has carried yet.
    private var pendingDropped: UInt64 = 0
    /// Reading is paused because these subscriptions are over their buffer limit.
    private var blockingSubscriptions: [SubscriptionState] = []
    private var closeDeadline: ContinuousClock.Instant?
    private var finished = false

    init(connection: Connection, handshake: CheckedContinuation<Result<Welcome, HeraldError>, Never>) {
        self.connection = connection
        self.socket = connection.socket
        self.handshake = handshake
        readCapacity = IOLoop.readBufferSize
        readBuffer = .allocate(byteCount: readCapacity, alignment: 16)
    }

    deinit {
        readBuffer.deallocate()
    }

    /// Reports a failure to start the thread to the waiting connect().
    func failToStart(_ error: HeraldError) {
        handshake?.resume(returning: .failure(error))
        handshake = nil
    }

    /// The thread body.
    func run() {
        _ = herald_set_thread_name("herald-io")
        let result = performHandshake()
        switch result {
        case .success:
            connection.didOpen()
            handshake?.resume(returning: result)
            handshake = nil
            runLoop()
        case .failure:
            handshake?.resume(returning: result)
            handshake = nil
        }
        if epollFD >= 0 { close(epollFD) }
        close(socket)
        connection.threadDidExit()
    }

    // MARK: - Handshake (blocking socket, on this thread)

    private func performHandshake() -> Result<Welcome, HeraldError> {
        let address = connection.address
        let options = connection.options
        let deadline = ContinuousClock.now + options.connectTimeout
        // Bound connect() too: it blocks while the broker's accept backlog is full.
        let (seconds, attoseconds) = options.connectTimeout.components
        var sendTimeout = timeval(tv_sec: Int(max(0, seconds)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if sendTimeout.tv_sec == 0 && sendTimeout.tv_usec == 0 { sendTimeout.tv_usec = 1 }
        _ = setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var name = address.name
        let connected = name.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                herald_unix_connect(socket, $0.baseAddress, $0.count, address.isAbstract ? 1 : 0)
            }
        }
        guard connected == 0 else {
            let error = herald_errno()
            if error == EAGAIN || error == EINPROGRESS { return .failure(.timeout) }
            return .failure(.brokerUnreachable(address: address.description, reason: connectFailureDescription(error)))
        }
        let hello = Hello(
            slowConsumerPolicy: options.slowConsumerPolicy,
            outputLimit: UInt32(clamping: max(0, options.outputLimit ?? 0)),
            clientName: options.clientName)
        let helloBytes = FrameEncoder.encode(.hello(hello))
        var sent = 0
        // A broker that refuses this peer on sight sends a fatal ERROR and closes, so sending
        // HELLO can fail; its ERROR is still readable and says why.
        var sendError: Int32?
        while sent < helloBytes.count {
            let n = helloBytes.withUnsafeBytes { send(socket, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let error = herald_errno()
                if error == EINTR { continue }
                sendError = error
                break
            }
            sent += n
        }
        func failure(_ what: String) -> Result<Welcome, HeraldError> {
            if let sendError { return .failure(.handshakeFailed("cannot send HELLO: \(systemErrorDescription(sendError))")) }
            return .failure(.handshakeFailed(what))
        }
        while true {
            if readEnd > readStart {
                let available = UnsafeRawBufferPointer(start: readBuffer + readStart, count: readEnd - readStart)
                do {
                    if let (frame, length) = try FrameDecoder.decode(available) {
                        readStart += length
                        return handshakeOutcome(frame)
                    }
                } catch {
                    return .failure(.handshakeFailed("the broker sent an invalid frame: \(error)"))
                }
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return .failure(.timeout) }
            var descriptor = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(clamping: milliseconds(remaining) + 1))
            if ready < 0 {
                let error = herald_errno()
                if error == EINTR { continue }
                return .failure(.handshakeFailed("poll failed: \(systemErrorDescription(error))"))
            }
            if ready == 0 { continue }
            if readEnd == readCapacity { makeRoom(for: readEnd - readStart + 1) }
            let n = read(socket, readBuffer + readEnd, readCapacity - readEnd)
            if n > 0 {
                readEnd += n
            } else if n == 0 {
                return failure("the broker closed the connection before answering HELLO")
            } else {
                let error = herald_errno()
                if error == EINTR { continue }
                return failure("cannot read the broker's answer: \(systemErrorDescription(error))")
            }
        }
    }

    private func handshakeOutcome(_ frame: Frame) -> Result<Welcome, HeraldError> {
        switch frame {
        case .welcome(let welcome):
            guard welcome.version >= ProtocolVersion.minimum && welcome.version <= ProtocolVersion.maximum else {
                return .failure(.unsupportedVersion)
            }
            maxFrameSize = Int(welcome.maxFrameSize)
            guard herald_set_nonblocking(socket, 1) == 0, setUpEpoll() else {
                return .failure(.connectionLost("cannot set up the socket: \(systemErrorDescription(herald_errno()))"))
            }
            return .success(welcome)
        case .error(let error):
            switch error.knownCode {
            case .notAuthorized, .unsupportedVersion:
                return .failure(HeraldError.fromBroker(error))
            case let code:
                let name = code?.description ?? "error \(error.code)"
                return .failure(.handshakeFailed(error.message.isEmpty ? name : "\(name): \(error.message)"))
            }
        case let other:
            return .failure(.handshakeFailed("the broker answered HELLO with \(other.type) instead of WELCOME"))
        }
    }

    private func setUpEpoll() -> Bool {
        epollFD = herald_epoll_create()
        guard epollFD >= 0 else { return false }
        registeredEvents = IOLoop.eventIn | IOLoop.eventRdHup
        return herald_epoll_ctl(epollFD, 1, connection.wakeFD, IOLoop.eventIn, IOLoop.wakeToken) == 0
            && herald_epoll_ctl(epollFD, 1, socket, registeredEvents, IOLoop.socketToken) == 0
    }

    // MARK: - Event loop

    private func runLoop() {
        // Frames that arrived together with WELCOME.
        if readEnd > readStart { parseFrames() }
        var events = [herald_event](repeating: herald_event(), count: 8)
        while !finished {
            if closeDeadline == nil && connection.closeRequested.load(ordering: .acquiring) { beginClose() }
            flushOutput()
            if finished { break }
            updateInterest()
            var timeout: Int32 = -1
            if let closeDeadline {
                let remaining = ContinuousClock.now.duration(to: closeDeadline)
                if remaining <= .zero {
                    finish(reason: nil, failSubscriptions: false)
                    break
                }
                timeout = Int32(clamping: milliseconds(remaining) + 1)
            }
            let count = events.withUnsafeMutableBufferPointer {
                herald_epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout)
            }
            if count < 0 {
                finish(reason: .connectionLost("epoll_wait failed: \(systemErrorDescription(herald_errno()))"), failSubscriptions: true)
                break
            }
            for index in 0..<Int(count) where !finished {
                let event = events[index]
                if event.data == IOLoop.wakeToken {
                    _ = herald_eventfd_drain(connection.wakeFD)
                    releasePauseIfPossible()
                    continue
                }
                if event.events & IOLoop.eventOut != 0 { waitingForWritable = false }
                let hangUp = event.events & (IOLoop.eventErr | IOLoop.eventHup | IOLoop.eventRdHup) != 0
                if hangUp || event.events & IOLoop.eventIn != 0 {
                    readAvailable(draining: hangUp)
                }
            }
        }
    }

    /// Whether reading is paused: a subscription is over its buffer limit and no reply is
    /// awaited (see ``Connection/awaitsReply``).
    private var isPaused: Bool { !blockingSubscriptions.isEmpty && !connection.awaitsReply }

    /// close() was called: GOODBYE is queued; wait a bounded time for the broker's answer.
    private func beginClose() {
        closeDeadline = ContinuousClock.now + IOLoop.closeTimeout
        // The subscriptions are ending anyway: read on so the broker's GOODBYE gets through.
        blockingSubscriptions.removeAll()
    }

    private func updateInterest() {
        var wanted: UInt32 = isPaused ? 0 : IOLoop.eventIn | IOLoop.eventRdHup
        if waitingForWritable { wanted |= IOLoop.eventOut }
        guard wanted != registeredEvents else { return }
        if herald_epoll_ctl(epollFD, 3, socket, wanted, IOLoop.socketToken) == 0 { registeredEvents = wanted }
    }

    /// Resumes reading once every subscription that paused it has been drained.
    private func releasePauseIfPossible() {
        guard !blockingSubscriptions.isEmpty else { return }
        blockingSubscriptions.removeAll { !$0.isBlockingReader }
    }

    // MARK: - Writing

    /// Writes queued frames until the socket is full or nothing is left.
    private func flushOutput() {
        while !finished {
            if writeOffset == writing.count {
                writing.removeAll()
                writeOffset = 0
                guard connection.takeOutgoing(into: &writing) else { return }
            }
            if waitingForWritable { return }
            let n = send(socket, writing.bytes + writeOffset, writing.count - writeOffset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            if n >= 0 {
                writeOffset += n
                continue
            }
            let error = herald_errno()
            switch error {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                waitingForWritable = true
                return
            default:
                // The broker is gone. Read what it sent last (a fatal ERROR or GOODBYE says why).
                readAvailable(draining: true)
                if !finished {
                    finish(
                        reason: closeDeadline == nil ? .connectionLost("cannot write to the broker: \(systemErrorDescription(error))") : nil,
                        failSubscriptions: true)
                }
                return
            }
        }
    }

    // MARK: - Reading (hot path)

    /// Reads what the socket holds and handles every complete frame. `draining`: the peer
    /// hung up, so read to the end regardless of the pause.
    private func readAvailable(draining: Bool) {
        var reads = 0
        while !finished && (draining || reads < IOLoop.readsPerEvent) {
            reads += 1
            if readEnd == readCapacity { makeRoom(for: readEnd - readStart + 1) }
            let space = readCapacity - readEnd
            let n = read(socket, readBuffer + readEnd, space)
            if n > 0 {
                readEnd += n
                parseFrames()
                if n < space && !draining { return }
                if isPaused && !draining { return }
                continue
            }
            if n == 0 {
                if closeDeadline != nil {
                    finish(reason: nil, failSubscriptions: false)
                } else {
                    finish(reason: .connectionClosed(reason: "it went away without saying goodbye"),
                        failSubscriptions: true)
                }
                return
            }
            let error = herald_errno()
            switch error {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                return
            default:
                // While closing, a broken connection is as good as the broker's GOODBYE.
                finish(
                    reason: closeDeadline == nil ? .connectionLost("cannot read from the broker: \(systemErrorDescription(error))") : nil,
                    failSubscriptions: true)
                return
            }
        }
    }

    /// Moves unparsed bytes to the front, and grows the buffer if `length` bytes (a whole
    /// frame, or the unparsed bytes plus one) would not fit.
    private func makeRoom(for length: Int) {
        let pending = readEnd - readStart
        if length > readCapacity {
            let capacity = max(length, readCapacity * 2)
            let bigger = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            bigger.copyMemory(from: readBuffer + readStart, byteCount: pending)
            readBuffer.deallocate()
            readBuffer = bigger
            readCapacity = capacity
        } else if readStart > 0 {
            memmove(readBuffer, readBuffer + readStart, pending)
        }
        readStart = 0
        readEnd = pending
    }

    /// Where the current run of messages goes: the last topic seen and what it matched.
    /// A local of `parseFrames`, so a message on the same topic as the previous one costs
    /// no class property access (no exclusivity check) and no reference counting.
    private struct Route {
        /// The topic, pointing into the read buffer (valid for one parse pass); nil at first.
        var topic: UnsafeRawPointer?
        var topicLength = -1
        /// The buffer and target index of the only matching subscription (the common case).
        /// Unmanaged: `targets` keeps it alive for the pass, and a strong reference here
        /// would cost a retain and a release per message.
        var single: Unmanaged<DeliveryBuffer>?
        var singleIndex = 0
        /// Several subscriptions match: stage through `cachedTargets`.
        var several = false
        /// Identifies this run of messages on one topic (see ``DeliveryBuffer``).
        var topicRun = 0
    }

    /// Consecutive MESSAGE frames in the read buffer for the single subscription of the
    /// current route, not yet copied: they are copied with one `memcpy` when the run ends.
    private struct Run {
        var start: UnsafeRawPointer?
        var length = 0
        var charge = 0
        var topicRun = 0
        var target: Unmanaged<DeliveryBuffer>?
        var targetIndex = 0
    }

    /// Handles every complete frame in the read buffer, then hands the staged messages over.
    ///
    /// MESSAGE frames (u64 sender peer id, u32 pid, u32 uid, u32 gid, u32 reserved, topic of
    /// `aux` bytes, payload) are checked and routed in place and copied, whole, into the
    /// matching subscriptions' buffers; the consuming task decodes them. Frames for the same
    /// single subscription and topic are copied as one run.
    private func parseFrames() {
        refreshTargetsIfNeeded()
        let base = readBuffer
        let end = readEnd
        let senderSize = ProtocolLimits.messageSenderBlockSize
        let maxMessageFrame = maxFrameSize + senderSize
        var cursor = readStart
        var route = Route()
        var run = Run()
        var dropped = pendingDropped
        while true {
            let available = end - cursor
            guard available >= FrameHeader.size else { break }
            let frame = UnsafeRawPointer(base + cursor)
            let header = FrameHeader(loadingFrom: frame)
            let length = header.frameLength
            var type = FrameType.message
            if header.type != FrameType.message.rawValue || length > maxMessageFrame {
                do {
                    type = try FrameDecoder.validate(header, maxFrameSize: maxFrameSize)
                } catch {
                    stage(&run)
                    readStart = cursor
                    protocolViolation("\(error)")
                    break
                }
            }
            guard available >= length else { break }
            cursor += length
            guard type == .message else {
                stage(&run)
                readStart = cursor
                pendingDropped = dropped
                let body = UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: length - FrameHeader.size)
                handleControlFrame(type, header, body)
                if finished { break }
                // It may have delivered the staged buffers or changed the subscriptions.
                route = Route()
                dropped = pendingDropped
                continue
            }
            let topicLength = Int(header.aux)
            guard header.flags == 0, Int(header.bodyLength) >= senderSize + topicLength else {
                stage(&run)
                readStart = cursor
                protocolViolation("MESSAGE with flags 0x\(String(header.flags, radix: 16)) or a topic longer than its body")
                break
            }
            let topic = frame + FrameHeader.size + senderSize
            if topicLength != route.topicLength || !ByteComparison.equal(topic, route.topic.unsafelyUnwrapped, count: topicLength) {
                stage(&run)
                route = self.route(UnsafeRawBufferPointer(start: topic, count: topicLength))
            }
            let charge = SubscriptionState.charge(topicLength: topicLength, payloadLength: Int(header.bodyLength) - senderSize - topicLength)
            if let single = route.single {
                if dropped != 0 {
                    // The drop marker goes in front of this frame: end the run, stage it alone.
                    stage(&run)
                    let wasEmpty = single._withUnsafeGuaranteedRef {
                        let wasEmpty = $0.isEmpty
                        $0.append(frame: frame, length: length, topicRun: route.topicRun, droppedBefore: dropped, charge: charge)
                        return wasEmpty
                    }
                    if wasEmpty { touched.append(route.singleIndex) }
                    dropped = 0
                } else if run.length > 0 {
                    // The run is this route's (a new route ends it) and ends right before this
                    // frame (anything skipped in between ends it too), so the topic is the same.
                    assert(run.start.unsafelyUnwrapped + run.length == frame)
                    (base + cursor - length).storeBytes(of: DeliveryBuffer.sameTopicFlag, toByteOffset: 5, as: UInt8.self)
                    run.length += length
                    run.charge += charge
                } else {
                    run = Run(
                        start: frame, length: length, charge: charge, topicRun: route.topicRun, target: single,
                        targetIndex: route.singleIndex)
                }
            } else if route.several {
                stageForSeveral(frame: frame, length: length, topicRun: route.topicRun, droppedBefore: dropped, charge: charge)
                dropped = 0
            }
        }
        stage(&run)
        pendingDropped = dropped
        readStart = cursor
        if !finished {
            if readStart == readEnd {
                readStart = 0
                readEnd = 0
            } else if readEnd - readStart >= FrameHeader.size {
                let length = FrameHeader(loadingFrom: readBuffer + readStart).frameLength
                if length > readCapacity { makeRoom(for: length) }
            }
            if readCapacity - readEnd < FrameHeader.size * 64 { makeRoom(for: 0) }
        }
        deliverStaged()
    }

    /// Finds the subscriptions `topic` matches (into `cachedTargets`, which outlives a pass).
    private func route(_ topic: UnsafeRawBufferPointer) -> Route {
        let known =
            cacheValid && cachedTopic.count == topic.count
            && (topic.isEmpty || cachedTopic.withUnsafeBytes { memcmp($0.baseAddress!, topic.baseAddress!, topic.count) == 0 })
        if !known {
            cachedTopic.removeAll(keepingCapacity: true)
            cachedTopic.append(contentsOf: topic)
            cachedTargets.removeAll(keepingCapacity: true)
            for index in targets.indices where targets[index].filters.contains(where: { $0.matches(topic: topic) }) {
                cachedTargets.append(index)
            }
            cacheValid = true
        }
        topicRuns &+= 1
        var route = Route(topic: topic.baseAddress, topicLength: topic.count, topicRun: topicRuns)
        if cachedTargets.count == 1 {
            route.singleIndex = cachedTargets[0]
            route.single = Unmanaged.passUnretained(targets[route.singleIndex].staged)
        } else {
            route.several = !cachedTargets.isEmpty
        }
        return route
    }

    /// Copies a run of frames into its subscription's buffer and empties it.
    @inline(__always)
    private func stage(_ run: inout Run) {
        guard run.length > 0, let target = run.target else { return }
        let wasEmpty = target._withUnsafeGuaranteedRef {
            let wasEmpty = $0.isEmpty
            $0.append(frames: run.start.unsafelyUnwrapped, length: run.length, topicRun: run.topicRun, charge: run.charge)
            return wasEmpty
        }
        if wasEmpty { touched.append(run.targetIndex) }
        run.length = 0
        run.charge = 0
    }

    /// Stages a MESSAGE frame for every subscription in `cachedTargets`.
    private func stageForSeveral(frame: UnsafeRawPointer, length: Int, topicRun: Int, droppedBefore: UInt64, charge: Int) {
        for index in cachedTargets {
            let staged = targets[index].staged
            if staged.isEmpty { touched.append(index) }
            staged.append(frame: frame, length: length, topicRun: topicRun, droppedBefore: droppedBefore, charge: charge)
        }
    }

    /// Re-reads the subscription table if it changed (only between batches: nothing is staged).
    private func refreshTargetsIfNeeded() {
        let version = connection.subscriptionsVersion.load(ordering: .acquiring)
        guard version != knownSubscriptionsVersion else { return }
        knownSubscriptionsVersion = version
        // Nothing is staged between batches: the old targets' buffers are reused.
        var buffers = targets.map(\.staged)
        targets = connection.activeSubscriptions().map {
            Target(state: $0.state, filters: $0.filters, staged: buffers.popLast() ?? DeliveryBuffer())
        }
        cacheValid = false
    }

    /// Hands each touched subscription its staged batch; pauses reading if one is over its limit.
    private func deliverStaged() {
        for index in touched {
            let state = targets[index].state
            let overLimit = state.deliver(&targets[index].staged)
            if overLimit && closeDeadline == nil && !blockingSubscriptions.contains(where: { $0 === state }) {
                blockingSubscriptions.append(state)
            }
        }
        touched.removeAll(keepingCapacity: true)
    }

    // MARK: - Control frames

    private func handleControlFrame(_ type: FrameType, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let frame: Frame
        do {
            frame = try FrameDecoder.decodeBody(type: type, header: header, body: body)
        } catch {
            protocolViolation("\(type): \(error)")
            return
        }
        switch frame {
        case .ok(let requestID):
            if connection.completeRequest(requestID, error: nil) == .subscribed {
                // Messages after this OK go to the new subscription too.
                deliverStaged()
                refreshTargetsIfNeeded()
            }
        case .error(let error):
            if error.isFatal {
                finish(reason: HeraldError.fromBroker(error), failSubscriptions: true)
            } else if connection.completeRequest(error.requestID, error: error) == .unknown {
                // Not a request of ours: the broker refused the PUBLISH with this ordinal.
                connection.recordPublishError(HeraldError.fromBroker(error))
            }
        case .pong(let token):
            connection.completePing(token)
        case .ping(let token):
            writing.append(.pong(token: token))
        case .goodbye(let goodbye):
            if closeDeadline != nil {
                finish(reason: nil, failSubscriptions: false)
            } else {
                let name = goodbye.reason == 0 ? "goodbye" : ErrorCode(rawValue: goodbye.reason)?.description ?? "reason \(goodbye.reason)"
                let reason = goodbye.message.isEmpty || goodbye.message == name ? name : "\(name): \(goodbye.message)"
                finish(reason: .connectionClosed(reason: reason), failSubscriptions: false)
            }
        case .dropped(let notice):
            pendingDropped &+= notice.messages
            connection.emit(.messagesDropped(count: notice.messages, bytes: notice.bytes))
        case .hello, .welcome, .subscribe, .unsubscribe, .publish, .message:
            protocolViolation("the broker sent \(type), which brokers do not send after the handshake")
        }
    }

    private func protocolViolation(_ what: String) {
        finish(reason: .connectionLost("protocol error from the broker: \(what)"), failSubscriptions: true)
    }

    private func finish(reason: HeraldError?, failSubscriptions: Bool) {
        guard !finished else { return }
        finished = true
        deliverStaged()
        connection.finish(reason: reason, failSubscriptions: failSubscriptions)
    }
}

/// Whole milliseconds in `duration`, rounded down.
func milliseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
}

/// A short description of an errno value.
func systemErrorDescription(_ error: Int32) -> String {
    guard let text = strerror(error) else { return "error \(error)" }
    return String(cString: text)
}

/// Why connect() failed, in terms a user acts on.
func connectFailureDescription(_ error: Int32) -> String {
    switch error {
    case ECONNREFUSED: "connection refused (is heraldd running?)"
    case ENOENT: "no such socket (is heraldd running?)"
    case EACCES, EPERM: "permission denied"
    case ENAMETOOLONG: "the address is too long for a Unix socket"
    default: systemErrorDescription(error)
    }
}
