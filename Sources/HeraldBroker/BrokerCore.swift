import HeraldProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The routing core: admission, handshake, subscriptions, routing and slow-consumer
/// handling for every peer. Bytes go in through ``receive(_:_:)``; frames come out in each
/// peer's output queue, and ``touched`` lists the peers that have something new to write.
/// No I/O happens here, so all of it runs in unit tests and benchmarks without sockets.
///
/// Single-threaded by design: the epoll server owns it and calls it from one thread.
public final class BrokerCore {
    let configuration: BrokerConfiguration
    let logger: Logger
    let brokerPID: UInt32
    let brokerUID: UInt32
    /// Counters for introspection.
    public private(set) var statistics = BrokerStatistics()

    private var peers: [PeerPointer?] = []
    private var freeSlots: [PeerSlot] = []
    private var slotsByID: [UInt64: PeerSlot] = [:]
    private var nextPeerID: UInt64 = 1
    private let index = SubscriptionIndex()

    /// Epoch for deduplicating subscribers while a route is built.
    private var routeEpoch: UInt64 = 0
    /// Epoch for deduplicating ``touched`` within one batch.
    private var batchEpoch: UInt64 = 1
    /// Peers with new output (or newly closing) since the last ``endBatch()``.
    private(set) var touched: [PeerPointer] = []
    /// Publishers whose reading resumed because the subscribers they waited for drained.
    private(set) var resumed: [PeerPointer] = []
    /// Peers removed in this batch; their memory is freed in ``endBatch()``, after every
    /// pointer the server may still hold for this batch is gone.
    private var released: [PeerPointer] = []

    /// Monotonic seconds of the call being handled: every entry point that can start a
    /// timer takes `now` and records it here, so the core never reads a clock itself and
    /// tests and fuzzing control time.
    private var clock = 0.0
    /// Connections admitted but not yet welcomed, in total and by uid (handshake limits).
    private var handshakingCount = 0
    private var handshakingByUID: [UInt32: Int] = [:]
    /// Bytes held in every peer's `input` (partial frames, paused batches): the partial-input budget.
    private(set) var inputBytesHeld = 0
    /// Closing peers that linger to write why they are closed.
    private(set) var lingeringCount = 0
    /// Set once shutdown begins.
    private var shuttingDown = false
    /// Refused connections are logged at most once a second (a flood must not flood the log).
    private var refusalLog = LogRateLimiter(interval: 1)
    /// The last refusal and its encoded ERROR, reused while a flood gets the same answer.
    private var lastRefusal: (refusal: AdmissionRefusal, frame: [UInt8])?

    /// Creates a core with `configuration`, reporting `brokerPID`/`brokerUID` in WELCOME.
    public init(configuration: BrokerConfiguration, logger: Logger, brokerPID: UInt32, brokerUID: UInt32) {
        self.configuration = configuration
        self.logger = logger
        self.brokerPID = brokerPID
        self.brokerUID = brokerUID
        touched.reserveCapacity(1024)
    }

    deinit {
        for case let peer? in peers { free(peer) }
        for peer in released { free(peer) }
    }

    var peerCount: Int { slotsByID.count }
    var subscriptionCount: Int { index.count }

    func peerPointer(slot: PeerSlot) -> PeerPointer? {
        guard slot >= 0, Int(slot) < peers.count else { return nil }
        return peers[Int(slot)]
    }

    func peer(id: UInt64) -> PeerPointer? {
        guard let slot = slotsByID[id] else { return nil }
        return peers[Int(slot)]
    }

    /// Calls `body` for every open peer (timers, shutdown; not the hot path).
    func forEachPeer(_ body: (PeerPointer) -> Void) {
        for case let peer? in peers { body(peer) }
    }

    // MARK: - Connections

    /// Registers a new connection. A peer that is refused (admission policy, connection or
    /// handshake limits) is returned already closing, with its fatal ERROR queued and
    /// ``Peer/closeImmediately`` set. (The epoll server asks ``refusalFrame(for:now:)``
    /// first and never registers a refused connection at all.)
    func connect(fd: Int32, credentials: PeerCredentials, now: Double) -> PeerPointer {
        clock = now
        let refusal = admissionRefusal(of: credentials)
        let slot: PeerSlot
        if let free = freeSlots.popLast() {
            slot = free
        } else {
            slot = PeerSlot(peers.count)
            peers.append(nil)
        }
        let id = nextPeerID
        nextPeerID += 1
        let peer = PeerPointer.allocate(capacity: 1)
        peer.initialize(
            to: Peer(
                slot: slot, id: id, fd: fd, credentials: credentials, outputLimit: configuration.outputLimit,
                handshakeDeadline: now + configuration.handshakeTimeout))
        peers[Int(slot)] = peer
        slotsByID[id] = slot
        statistics.connectionsAccepted += 1
        statistics.connectionsOpen += 1

        if let refusal {
            recordRefusal(refusal, credentials: credentials)
            refuse(peer, refusal.code, refusal.message)
        } else {
            enterHandshake(peer)
            logger.debug(
                "accepted connection",
                metadata: ["peer": "\(id)", "pid": "\(credentials.pid)", "uid": "\(credentials.uid)", "gid": "\(credentials.gid)"])
        }
        return peer
    }

    /// Decides at accept time whether a connection with `credentials` is refused. A refused
    /// connection is counted and logged (at most once a second) here and gets no peer at
    /// all: the server writes the returned fatal ERROR frame once and closes the socket, so
    /// a flood of refused connections costs one accept, one write and one close each.
    /// Returns nil to admit (then call ``connect(fd:credentials:now:)``).
    func refusalFrame(for credentials: PeerCredentials, now: Double) -> [UInt8]? {
        clock = now
        guard let refusal = admissionRefusal(of: credentials) else { return nil }
        statistics.connectionsAccepted += 1
        recordRefusal(refusal, credentials: credentials)
        if let cached = lastRefusal, cached.refusal == refusal { return cached.frame }
        let frame = FrameEncoder.encode(
            .error(ErrorFrame(code: refusal.code.rawValue, isFatal: true, requestID: 0, message: refusal.message)))
        lastRefusal = (refusal, frame)
        return frame
    }

    private func recordRefusal(_ refusal: AdmissionRefusal, credentials: PeerCredentials) {
        statistics.connectionsRefused += 1
        if let heldBack = refusalLog.admit(now: clock) {
            logger.warning(
                "refused connection: \(refusal.code)",
                metadata: ["pid": "\(credentials.pid)", "uid": "\(credentials.uid)", "error": "\(refusal.message)",
                    "refusals_not_logged": "\(heldBack)"])
        }
    }

    /// Why a new connection with `credentials` would be refused now, or nil to admit it.
    private func admissionRefusal(of credentials: PeerCredentials) -> AdmissionRefusal? {
        let uid = credentials.uid
        if !isAdmitted(uid) { return .notAuthorized(uid: uid) }
        if slotsByID.count >= configuration.maxConnections { return .connectionLimit(configuration.maxConnections) }
        if handshakingCount >= configuration.maxHandshakingConnections {
            return .handshakeLimit(configuration.maxHandshakingConnections)
        }
        if handshakingByUID[uid, default: 0] >= configuration.maxHandshakingConnectionsPerUID {
            return .handshakeLimitForUID(uid: uid, limit: configuration.maxHandshakingConnectionsPerUID)
        }
        return nil
    }

    /// Default admission policy: the broker's own uid, root, and any configured extras.
    private func isAdmitted(_ uid: UInt32) -> Bool {
        uid == brokerUID || uid == 0 || configuration.extraAllowedUIDs.contains(uid)
    }

    private func enterHandshake(_ peer: PeerPointer) {
        peer.pointee.countedInHandshake = true
        handshakingCount += 1
        handshakingByUID[peer.pointee.credentials.uid, default: 0] += 1
    }

    /// The peer was welcomed, or is closing before it was: it no longer counts against the
    /// handshake limits.
    private func leaveHandshake(_ peer: PeerPointer) {
        guard peer.pointee.countedInHandshake else { return }
        peer.pointee.countedInHandshake = false
        handshakingCount -= 1
        let uid = peer.pointee.credentials.uid
        let left = handshakingByUID[uid, default: 1] - 1
        handshakingByUID[uid] = left == 0 ? nil : left
    }

    /// The server closed `peer`'s socket (end of stream, error, or finished closing).
    func remove(_ peer: PeerPointer, reason: String) {
        guard peer.pointee.state != .closed else { return }
        let wasClosing = peer.pointee.state == .closing
        if !wasClosing { dropState(of: peer) }
        if peer.pointee.countedAsLingering {
            peer.pointee.countedAsLingering = false
            lingeringCount -= 1
        }
        let why = wasClosing ? peer.pointee.closeReason : reason
        peer.pointee.state = .closed
        slotsByID[peer.pointee.id] = nil
        peers[Int(peer.pointee.slot)] = nil
        statistics.connectionsOpen -= 1
        if !peer.pointee.wasWelcomed {
            // Refusals and handshake failures were logged (rate-limited) when they happened.
            logger.debug("connection closed before handshake", metadata: ["peer": "\(peer.pointee.id)", "reason": "\(why)"])
        } else {
            logger.info(
                "peer disconnected",
                metadata: [
                    "peer": "\(peer.pointee.id)", "name": "\(peer.pointee.name)", "pid": "\(peer.pointee.credentials.pid)",
                    "uid": "\(peer.pointee.credentials.uid)", "reason": "\(why)",
                    "published": "\(peer.pointee.messagesPublished)", "received": "\(peer.pointee.messagesReceived)",
                    "dropped": "\(peer.pointee.totalDropped)",
                ])
        }
        released.append(peer)
    }

    /// Hands over the peers with new output and starts a new batch, so a peer touched
    /// while they are being flushed is listed again. `batch` must be empty; the arrays are
    /// swapped, so neither is reallocated (this runs on every wakeup).
    func takeTouched(into batch: inout [PeerPointer]) {
        batchEpoch &+= 1
        swap(&batch, &touched)
    }

    /// Hands over the publishers whose reading may resume; `batch` must be empty.
    func takeResumed(into batch: inout [PeerPointer]) {
        swap(&batch, &resumed)
    }

    /// Frees the peers removed since the last call, after dropping them from ``touched``
    /// and ``resumed``. The caller must hold no other pointer to a closed peer.
    func freeRemovedPeers() {
        guard !released.isEmpty else { return }
        touched.removeAll { $0.pointee.state == .closed }
        resumed.removeAll { $0.pointee.state == .closed }
        for peer in released {
            freeSlots.append(peer.pointee.slot)
            free(peer)
        }
        released.removeAll(keepingCapacity: true)
    }

    /// Ends a batch without a server: forgets ``touched`` and ``resumed`` and frees removed peers.
    func endBatch() {
        batchEpoch &+= 1
        touched.removeAll(keepingCapacity: true)
        resumed.removeAll(keepingCapacity: true)
        freeRemovedPeers()
    }

    private func free(_ peer: PeerPointer) {
        peer.deinitialize(count: 1)
        peer.deallocate()
    }

    @inline(__always)
    private func touch(_ peer: PeerPointer) {
        if peer.pointee.touchedMark != batchEpoch {
            peer.pointee.touchedMark = batchEpoch
            touched.append(peer)
        }
    }

    // MARK: - Input

    /// Processes bytes received from `peer` at `now`: every whole frame is handled in place;
    /// a trailing partial frame (or the rest of the batch, if the peer gets paused) is kept.
    /// When a partial frame is already kept, only its missing bytes are copied to complete
    /// it; the rest of `bytes` is still processed in place (no second copy of the batch).
    func receive(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer, now: Double) {
        clock = now
        guard bytes.count > 0, isOpenForInput(peer) else { return }
        var used = 0
        if !peer.pointee.input.isEmpty {
            used = completeKeptFrame(peer, bytes)
            guard used < bytes.count, peer.pointee.input.isEmpty, isOpenForInput(peer), peer.pointee.blockedOnCount == 0
            else {
                if used < bytes.count && isOpenForInput(peer) { keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[used...])) }
                return
            }
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
        let processed = process(peer, rest.baseAddress!, rest.count)
        if processed < rest.count, isOpenForInput(peer) {
            keepInput(peer, UnsafeRawBufferPointer(rebasing: rest[processed...]))
        }
    }

    @inline(__always)
    private func isOpenForInput(_ peer: PeerPointer) -> Bool {
        peer.pointee.state == .handshaking || peer.pointee.state == .active
    }

    /// Keeps unprocessed bytes in `peer`'s input, within the partial-input budget. The
    /// peer whose bytes would go past the budget is closed with `input_budget_exceeded`,
    /// unless the broker itself paused it (its batch is kept because of backpressure).
    private func keepInput(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer) {
        if inputBytesHeld + bytes.count > configuration.partialInputBudget && !peer.pointee.isReadPaused {
            statistics.inputBudgetRefusals &+= 1
            fail(peer, .inputBudgetExceeded,
                "the broker holds \(inputBytesHeld) bytes of partially received frames, its limit is \(configuration.partialInputBudget)")
            return
        }
        if peer.pointee.input.isEmpty { peer.pointee.inputSince = clock }
        peer.pointee.input.append(bytes)
        inputBytesHeld += bytes.count
    }

    /// Drops the first `count` bytes of `peer`'s input (processed), or all of it.
    private func releaseInput(_ peer: PeerPointer, _ count: Int? = nil) {
        let released = count ?? peer.pointee.input.count
        if count == nil { peer.pointee.input.removeAll() } else { peer.pointee.input.discard(released) }
        inputBytesHeld -= released
        // What is left starts a new frame (or is a paused batch): its clock starts now.
        if released > 0 { peer.pointee.inputSince = clock }
    }

    /// The largest frame `peer` may send in its current state: a HELLO before the
    /// handshake, the configured maximum after it.
    @inline(__always)
    private func maxInputFrameSize(_ peer: PeerPointer) -> Int {
        peer.pointee.state == .handshaking ? ProtocolLimits.maxHelloFrameSize : configuration.maxFrameSize
    }

    /// Moves just enough of `bytes` into the kept input to complete its first frame, then
    /// processes the kept input. Returns how many bytes of `bytes` it took. A header that
    /// is refused is refused before any of its body is kept.
    private func completeKeptFrame(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer) -> Int {
        var used = 0
        let kept = peer.pointee.input.count
        if kept < FrameHeader.size {
            let take = min(FrameHeader.size - kept, bytes.count)
            keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            used = take
            if peer.pointee.input.count < FrameHeader.size { return used }
        }
        let header = FrameHeader(loadingFrom: peer.pointee.input.readPointer)
        guard checkHeader(peer, header) else { return used }
        let missing = header.frameLength - peer.pointee.input.count
        if missing > 0 {
            let take = min(missing, bytes.count - used)
            keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[used..<used + take]))
            used += take
            if take < missing || !isOpenForInput(peer) { return used }
        }
        processBufferedInput(peer, now: clock)
        return used
    }

    /// Processes input kept while `peer` was paused; call when it appears in ``resumed``.
    func processBufferedInput(_ peer: PeerPointer, now: Double) {
        clock = now
        guard !peer.pointee.input.isEmpty else { return }
        let used = process(peer, peer.pointee.input.readPointer, peer.pointee.input.count)
        if peer.pointee.state == .closing || peer.pointee.state == .closed {
            releaseInput(peer)
        } else {
            releaseInput(peer, used)
        }
    }

    /// The frame loop. Hot path: PUBLISH frames from active peers are recognised from the
    /// header alone and routed in place, without decoding into a value.
    private func process(_ peer: PeerPointer, _ base: UnsafeRawPointer, _ count: Int) -> Int {
        let maxFrameSize = configuration.maxFrameSize
        var offset = 0
        while count - offset >= FrameHeader.size {
            let frame = base + offset
            let header = FrameHeader(loadingFrom: frame)
            let length = header.frameLength
            if header.type == FrameType.publish.rawValue && peer.pointee.state == .active {
                guard length <= maxFrameSize else {
                    fail(peer, .frameTooLarge, "frame of \(length) bytes exceeds the maximum of \(maxFrameSize)")
                    return offset
                }
                guard count - offset >= length else { break }
                publish(peer, frame, header)
                offset += length
                if peer.pointee.blockedOnCount > 0 || peer.pointee.state != .active { break }
                continue
            }
            if !checkHeader(peer, header) { return offset }
            guard count - offset >= length else { break }
            handleControlFrame(peer, header, UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: Int(header.bodyLength)))
            offset += length
            if peer.pointee.state != .active && peer.pointee.state != .handshaking { return offset }
            if peer.pointee.blockedOnCount > 0 { break }
        }
        return offset
    }

    /// Checks a header as soon as its 8 bytes are in, before any of the body is kept, in
    /// the order of PROTOCOL.md §3.5: before the handshake, HELLO only (`handshake_required`)
    /// and no longer than the largest HELLO; after it, a defined type (`unknown_frame_type`)
    /// that clients send (`unexpected_frame`, which a second HELLO also gets) within the
    /// maximum frame size (`frame_too_large`). Closes the peer and returns false otherwise.
    private func checkHeader(_ peer: PeerPointer, _ header: FrameHeader) -> Bool {
        let length = header.frameLength
        let maximum = maxInputFrameSize(peer)
        guard let type = FrameType(rawValue: header.type), peer.pointee.state == .active || type == .hello else {
            // Before the handshake only HELLO makes sense; saying so beats "unknown type 0x2f"
            // for whatever connected by mistake.
            let name = FrameType(rawValue: header.type).map { "\($0)" } ?? "bytes that are not a Herald frame"
            if peer.pointee.state == .handshaking {
                fail(peer, .handshakeRequired, "expected HELLO, got \(name)")
            } else {
                fail(peer, .unknownFrameType, "unknown frame type 0x\(String(header.type, radix: 16))")
            }
            return false
        }
        if peer.pointee.state == .active && (!type.isSentByClients || type == .hello) {
            fail(peer, .unexpectedFrame, type == .hello ? "HELLO after the handshake" : "\(type) is not sent by clients")
            return false
        }
        guard length <= maximum else {
            let what = peer.pointee.state == .handshaking ? "HELLO of \(length) bytes exceeds the \(maximum) bytes a HELLO can have"
                : "frame of \(length) bytes exceeds the maximum of \(maximum)"
            fail(peer, .frameTooLarge, what)
            return false
        }
        return true
    }

    // MARK: - Routing (hot path)
    //
    // Unsafe and dense on purpose: no allocation, reference counting or exclusivity checks
    // per message. Peers are reached through pointers; the route is a manually managed list;
    // a delivery is an 8-byte header, a 24-byte sender block and one memcpy of topic+payload.

    @inline(__always)
    private func publish(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        publisher.pointee.publishOrdinal &+= 1
        let topicLength = Int(header.aux)
        let bodyLength = Int(header.bodyLength)
        guard header.flags == 0 else {
            requestError(publisher, .unsupportedFlags, requestID: publisher.pointee.publishOrdinal,
                "PUBLISH flag bits 0x\(String(header.flags, radix: 16)) are not defined in this protocol version")
            return
        }
        guard topicLength <= bodyLength else {
            fail(publisher, .malformedFrame, "PUBLISH topic length \(topicLength) exceeds its body of \(bodyLength) bytes")
            return
        }
        let topic = frame + FrameHeader.size
        if publisher.pointee.routeGeneration != index.generation || publisher.pointee.routeTopic.count != topicLength
            // Inline compare: a memcmp call per message was a tenth of the routing loop.
            || !ByteComparison.equal(publisher.pointee.routeTopic.readPointer, topic, count: topicLength)
        {
            guard refreshRoute(publisher, UnsafeRawBufferPointer(start: topic, count: topicLength)) else { return }
        }
        publisher.pointee.messagesPublished &+= 1
        statistics.messagesPublished &+= 1

        let routeCount = publisher.pointee.route.count
        guard routeCount > 0 else { return }
        let route = publisher.pointee.route.base!
        let deliveryLength = FrameHeader.size + ProtocolLimits.messageSenderBlockSize + bodyLength
        let senderID = publisher.pointee.id
        let credentials = publisher.pointee.credentials
        var delivered = 0
        for position in 0..<routeCount {
            let subscriber = route[position]
            let queued = subscriber.pointee.output.count
            if (queued > 0 && queued + deliveryLength > subscriber.pointee.outputLimit)
                || subscriber.pointee.pendingDroppedMessages != 0
            {
                if !admitOverLimit(subscriber, publisher: publisher, length: deliveryLength) { continue }
            }
            let out = subscriber.pointee.output.reserve(deliveryLength)
            FrameHeader(
                bodyLength: UInt32(truncatingIfNeeded: deliveryLength - FrameHeader.size),
                type: FrameType.message.rawValue, aux: UInt16(truncatingIfNeeded: topicLength)
            ).store(to: out)
            out.storeBytes(of: senderID.littleEndian, toByteOffset: 8, as: UInt64.self)
            out.storeBytes(of: credentials.pid.littleEndian, toByteOffset: 16, as: UInt32.self)
            out.storeBytes(of: credentials.uid.littleEndian, toByteOffset: 20, as: UInt32.self)
            out.storeBytes(of: credentials.gid.littleEndian, toByteOffset: 24, as: UInt32.self)
            out.storeBytes(of: UInt32(0), toByteOffset: 28, as: UInt32.self)
            (out + 32).copyMemory(from: topic, byteCount: bodyLength)
            subscriber.pointee.output.commit(deliveryLength)
            subscriber.pointee.messagesReceived &+= 1
            delivered &+= 1
            touch(subscriber)
        }
        statistics.messagesDelivered &+= UInt64(delivered)
    }

    /// Recomputes `publisher`'s cached route for `topic`. Returns false (after sending an
    /// ERROR) when the topic is not publishable.
    private func refreshRoute(_ publisher: PeerPointer, _ topic: UnsafeRawBufferPointer) -> Bool {
        if let problem = Topic.validatePublishable(topic, maxLength: configuration.maxTopicLength) {
            let shown = String(decoding: topic.prefix(128), as: UTF8.self)
            requestError(
                publisher, problem.errorCode(isFilter: false), requestID: publisher.pointee.publishOrdinal,
                "topic '\(shown)' \(problem)")
            return false
        }
        routeEpoch &+= 1
        let epoch = routeEpoch
        publisher.pointee.route.removeAll()
        index.forEachMatch(topic) { entry in
            // A peer with several matching filters receives the message once.
            if entry.peer.pointee.routeMark != epoch {
                entry.peer.pointee.routeMark = epoch
                publisher.pointee.route.append(entry.peer)
            }
        }
        publisher.pointee.routeTopic.removeAll(keepingStorage: true)
        publisher.pointee.routeTopic.append(topic)
        publisher.pointee.routeGeneration = index.generation
        return true
    }

    /// Applies `subscriber`'s slow-consumer policy to a delivery that does not fit, or that
    /// follows a run of drops. Returns whether the delivery should be queued.
    private func admitOverLimit(_ subscriber: PeerPointer, publisher: PeerPointer, length: Int) -> Bool {
        let limit = subscriber.pointee.outputLimit
        let queued = subscriber.pointee.output.count
        switch subscriber.pointee.policy {
        case .drop:
            // Hysteresis: once dropping, keep dropping until half the limit has drained, so a
            // subscriber at the edge gets one gap and one notice, not a notice per message.
            let pending = subscriber.pointee.pendingDroppedMessages
            let threshold = pending == 0 ? limit : limit / 2
            if queued > 0 && queued + length > threshold {
                if pending == 0 { logDropEpisode(subscriber, queued: queued) }
                subscriber.pointee.pendingDroppedMessages &+= 1
                subscriber.pointee.pendingDroppedBytes &+= UInt64(length)
                subscriber.pointee.totalDropped &+= 1
                statistics.messagesDropped &+= 1
                return false
            }
            sendDropNotice(subscriber)
            return true
        case .disconnect:
            statistics.slowConsumersDisconnected &+= 1
            logger.warning(
                "disconnecting slow consumer", metadata: peerMetadata(subscriber, ["queued": "\(queued)", "limit": "\(limit)"]))
            // What is queued beyond the frame being written is lost anyway; cut it so the
            // ERROR reaches the subscriber right after the last whole message.
            subscriber.pointee.output.truncateToFrameBoundary()
            fail(subscriber, .slowConsumer, "fell more than \(limit) bytes behind (slow-consumer policy: disconnect)",
                linger: configuration.slowConsumerLinger)
            return false
        case .backpressure:
            // Lossless: queue it anyway (the overshoot is bounded by one read batch of the
            // publisher) and stop reading the publisher until this subscriber drains.
            if !subscriber.pointee.pausedPublishers.contains(publisher.pointee.id) {
                subscriber.pointee.pausedPublishers.append(publisher.pointee.id)
                publisher.pointee.blockedOnCount += 1
                statistics.publishersPaused &+= 1
                logger.debug(
                    "pausing publisher for a backpressure subscriber",
                    metadata: peerMetadata(subscriber, ["publisher": "\(publisher.pointee.id)"]))
            }
            return true
        }
    }

    /// Logs the start of a run of drops, at most once a second per subscriber so a peer
    /// hovering at its limit cannot flood the log (the counters still count every drop).
    private func logDropEpisode(_ subscriber: PeerPointer, queued: Int) {
        let now = clock
        guard now - subscriber.pointee.lastDropLog >= 1 else { return }
        subscriber.pointee.lastDropLog = now
        logger.warning(
            "subscriber over its output limit; dropping its messages until it catches up",
            metadata: peerMetadata(subscriber, [
                "queued": "\(queued)", "limit": "\(subscriber.pointee.outputLimit)",
                "dropped_so_far": "\(subscriber.pointee.totalDropped)",
            ]))
    }

    private func sendDropNotice(_ subscriber: PeerPointer) {
        let messages = subscriber.pointee.pendingDroppedMessages
        guard messages > 0 else { return }
        let bytes = subscriber.pointee.pendingDroppedBytes
        subscriber.pointee.pendingDroppedMessages = 0
        subscriber.pointee.pendingDroppedBytes = 0
        logger.debug("subscriber caught up; telling it how many messages it lost",
            metadata: peerMetadata(subscriber, ["dropped": "\(messages)"]))
        enqueue(.dropped(DropNotice(messages: messages, bytes: bytes)), to: subscriber, control: false)
    }

    // MARK: - Output progress

    /// The server wrote some of `peer`'s output. Sends a pending drop notice and resumes
    /// paused publishers once the peer has drained below half its limit.
    func didWrite(_ peer: PeerPointer) {
        guard peer.pointee.state == .active else { return }
        let halfLimit = peer.pointee.outputLimit / 2
        guard peer.pointee.output.count <= halfLimit else { return }
        if peer.pointee.pendingDroppedMessages != 0 { sendDropNotice(peer) }
        if !peer.pointee.pausedPublishers.isEmpty { releasePausedPublishers(of: peer) }
    }

    private func releasePausedPublishers(of subscriber: PeerPointer) {
        let ids = subscriber.pointee.pausedPublishers
        subscriber.pointee.pausedPublishers.removeAll()
        for id in ids {
            guard let publisher = peer(id: id) else { continue }
            publisher.pointee.blockedOnCount -= 1
            if publisher.pointee.blockedOnCount == 0 && publisher.pointee.state == .active { resumed.append(publisher) }
        }
    }

    // MARK: - Control frames

    /// Handles a whole frame whose header ``checkHeader(_:_:)`` accepted: flags, then aux,
    /// then the body (PROTOCOL.md §3.5).
    private func handleControlFrame(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let type = FrameType(rawValue: header.type)!
        if type == .subscribe {
            // Decoded here rather than by FrameDecoder: a filter that is not UTF-8 is an
            // invalid filter (the session goes on), not a malformed frame.
            handleSubscribe(peer, header, body)
            return
        }
        let frame: Frame
        do {
            frame = try FrameDecoder.decodeBody(type: type, header: header, body: body)
        } catch .unsupportedFlags(let flags) {
            // Ignored, session goes on; a HELLO so refused leaves the peer in the handshake.
            requestError(peer, .unsupportedFlags, requestID: Self.requestID(of: type, body),
                "\(type) flag bits 0x\(String(flags, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        } catch {
            if type == .hello && header.aux == 0
                && (body.count < 4 || body.loadUnaligned(as: UInt32.self) != ProtocolVersion.helloMagic.littleEndian)
            {
                fail(peer, .notHerald, "HELLO does not start with the Herald magic; this is not a Herald client")
            } else {
                fail(peer, error.errorCode, "\(type): \(error)")
            }
            return
        }
        switch frame {
        case .hello(let hello):
            welcome(peer, hello)
        case .ping(let token):
            enqueue(.pong(token: token), to: peer)
        case .pong:
            break  // The broker sends no PINGs yet; an unsolicited PONG is harmless.
        case .goodbye:
            enqueue(.goodbye(Goodbye(reason: 0, message: "goodbye")), to: peer)
            startClosing(peer, reason: "client said goodbye")
        case .unsubscribe(let request):
            guard let filter = peer.pointee.subscriptions.removeValue(forKey: request.subscriptionID) else {
                requestError(peer, .unknownSubscription, requestID: request.requestID,
                    "no active subscription with id \(request.subscriptionID)")
                return
            }
            index.remove(filter, peer: peer, subscriptionID: request.subscriptionID)
            enqueue(.ok(requestID: request.requestID), to: peer)
        case .welcome, .error, .ok, .message, .dropped, .subscribe, .publish:
            // checkHeader refused the broker's types; SUBSCRIBE and PUBLISH go elsewhere.
            preconditionFailure("\(type) reached the control-frame handler")
        }
    }

    /// The `request_id` an ERROR about a refused frame carries (PROTOCOL.md §4.3): the
    /// request's own id for SUBSCRIBE and UNSUBSCRIBE when the body holds one, else 0.
    /// (PUBLISH errors carry the PUBLISH ordinal instead; see ``publish(_:_:_:)``.)
    private static func requestID(of type: FrameType, _ body: UnsafeRawBufferPointer) -> UInt32 {
        guard type == .subscribe || type == .unsubscribe, body.count >= 4 else { return 0 }
        return UInt32(littleEndian: body.loadUnaligned(as: UInt32.self))
    }

    private func welcome(_ peer: PeerPointer, _ hello: Hello) {
        let high = min(hello.maxVersion, ProtocolVersion.maximum)
        guard hello.minVersion <= hello.maxVersion, high >= max(hello.minVersion, ProtocolVersion.minimum) else {
            fail(peer, .unsupportedVersion,
                "client speaks versions \(hello.minVersion)-\(hello.maxVersion), broker \(ProtocolVersion.minimum)-\(ProtocolVersion.maximum)")
            return
        }
        let requested = Int(hello.outputLimit)
        let limit = requested == 0
            ? configuration.outputLimit
            : max(BrokerConfiguration.minimumOutputLimit, min(requested, configuration.outputLimit))
        leaveHandshake(peer)
        peer.pointee.state = .active
        peer.pointee.wasWelcomed = true
        peer.pointee.name = hello.clientName
        let policy = hello.slowConsumerPolicy ?? configuration.defaultSlowConsumerPolicy
        peer.pointee.policy = policy
        peer.pointee.outputLimit = limit
        peer.pointee.output.compactionThreshold = limit + configuration.maxFrameSize
        enqueue(
            .welcome(
                Welcome(
                    version: high, peerID: peer.pointee.id, credentials: peer.pointee.credentials, brokerPID: brokerPID,
                    brokerUID: brokerUID, maxFrameSize: UInt32(configuration.maxFrameSize),
                    maxTopicLength: UInt32(configuration.maxTopicLength),
                    maxSubscriptions: UInt32(configuration.maxSubscriptionsPerPeer), outputLimit: UInt32(limit),
                    slowConsumerPolicy: policy, serverName: configuration.serverName)), to: peer)
        logger.info(
            "peer connected",
            metadata: peerMetadata(peer, ["gid": "\(peer.pointee.credentials.gid)", "policy": "\(policy)",
                "output_limit": "\(limit)"]))
    }

    private func handleSubscribe(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        guard header.flags == 0 else {
            // Like every other frame with undefined flags: refused, the session goes on.
            requestError(peer, .unsupportedFlags, requestID: Self.requestID(of: .subscribe, body),
                "SUBSCRIBE flag bits 0x\(String(header.flags, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        }
        guard header.aux == 0 else {
            fail(peer, .malformedFrame, "SUBSCRIBE with a non-zero aux field")
            return
        }
        guard body.count >= 8 else {
            fail(peer, .malformedFrame, "SUBSCRIBE body of \(body.count) bytes is shorter than its 8 fixed bytes")
            return
        }
        let requestID = UInt32(littleEndian: body.loadUnaligned(as: UInt32.self))
        let subscriptionID = UInt32(littleEndian: body.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let filterBytes = UnsafeRawBufferPointer(rebasing: body[8...])
        // Length before UTF-8 (PROTOCOL.md §4.8): a filter too long is too long, whatever its bytes.
        guard filterBytes.count <= configuration.maxTopicLength else {
            requestError(peer, .topicTooLong, requestID: requestID,
                "filter of \(filterBytes.count) bytes is longer than the maximum of \(configuration.maxTopicLength)")
            return
        }
        guard let text = String(validating: filterBytes, as: UTF8.self) else {
            requestError(peer, .invalidFilter, requestID: requestID, "filter is not valid UTF-8")
            return
        }
        let filter: TopicFilter
        do {
            filter = try TopicFilter(text, maxLength: configuration.maxTopicLength)
        } catch {
            requestError(peer, error.errorCode(isFilter: true), requestID: requestID, "filter '\(text.prefix(128))' \(error)")
            return
        }
        guard peer.pointee.subscriptions[subscriptionID] == nil else {
            requestError(peer, .duplicateSubscription, requestID: requestID,
                "subscription id \(subscriptionID) is already in use on this connection")
            return
        }
        guard peer.pointee.subscriptions.count < configuration.maxSubscriptionsPerPeer else {
            requestError(peer, .tooManySubscriptions, requestID: requestID,
                "this connection already has the maximum of \(configuration.maxSubscriptionsPerPeer) subscriptions")
            return
        }
        peer.pointee.subscriptions[subscriptionID] = filter
        index.insert(filter, peer: peer, subscriptionID: subscriptionID)
        enqueue(.ok(requestID: requestID), to: peer)
    }

    // MARK: - Errors and closing

    /// Sends a non-fatal ERROR: the request failed, the session goes on.
    private func requestError(_ peer: PeerPointer, _ code: ErrorCode, requestID: UInt32, _ message: String) {
        statistics.requestErrors &+= 1
        logger.notice("request refused: \(code)", metadata: peerMetadata(peer, ["request": "\(requestID)", "error": "\(message)"]))
        enqueue(.error(ErrorFrame(code, requestID: requestID, message: message)), to: peer)
    }

    /// Sends a fatal ERROR and closes the peer once it has been written.
    func fail(_ peer: PeerPointer, _ code: ErrorCode, _ message: String, linger: Double? = nil) {
        guard peer.pointee.state == .handshaking || peer.pointee.state == .active else { return }
        switch code {
        case .notAuthorized, .tooManyConnections, .slowConsumer:
            break  // Counted and logged where they are decided.
        default:
            statistics.protocolErrors &+= 1
            logger.warning("closing connection: \(code)", metadata: peerMetadata(peer, ["error": "\(message)"]))
        }
        enqueue(.error(ErrorFrame(code: code.rawValue, isFatal: true, requestID: 0, message: message)), to: peer, control: false)
        startClosing(peer, reason: "\(code): \(message)", linger: linger)
    }

    /// The server saw `peer` end its stream at `now` while output is still queued for it:
    /// stop reading and routing, write what is queued, then close.
    func beginClosing(_ peer: PeerPointer, reason: String, now: Double) {
        clock = now
        startClosing(peer, reason: reason)
    }

    /// Refuses `peer` with a fatal ERROR that gets one write attempt, then the socket is
    /// closed without lingering (refusals must not hold descriptors).
    func refuse(_ peer: PeerPointer, _ code: ErrorCode, _ message: String) {
        peer.pointee.closeImmediately = true
        fail(peer, code, message)
    }

    /// The server refused `count` connections at the descriptor limit without registering them.
    func recordConnectionsShed(_ count: Int) {
        statistics.connectionsShedAtDescriptorLimit &+= UInt64(count)
        statistics.connectionsRefused &+= UInt64(count)
    }

    /// Whether peers have output to write or paused publishers to resume: the server must
    /// not sleep in `epoll_wait` then.
    var hasPendingWork: Bool { !touched.isEmpty || !resumed.isEmpty }

    /// Stops routing to and reading from `peer`; the server closes it once its output is
    /// written or its linger deadline passes. Past ``BrokerConfiguration/maxLingeringConnections``
    /// lingering peers, the peer gets one write attempt and no linger.
    private func startClosing(_ peer: PeerPointer, reason: String, linger: Double? = nil) {
        guard peer.pointee.state == .handshaking || peer.pointee.state == .active else { return }
        dropState(of: peer)
        peer.pointee.state = .closing
        peer.pointee.closeReason = reason
        peer.pointee.closeDeadline = clock + (linger ?? configuration.closeLinger)
        if !peer.pointee.closeImmediately {
            // A stopping broker lets every peer linger for the grace period: it exits then anyway.
            if lingeringCount < configuration.maxLingeringConnections || shuttingDown {
                peer.pointee.countedAsLingering = true
                lingeringCount += 1
            } else {
                peer.pointee.closeImmediately = true
                statistics.lingerRefusals &+= 1
            }
        }
        touch(peer)
    }

    /// Removes `peer`'s subscriptions and input, releases the publishers it held paused,
    /// and takes it out of the handshake count.
    private func dropState(of peer: PeerPointer) {
        for (id, filter) in peer.pointee.subscriptions { index.remove(filter, peer: peer, subscriptionID: id) }
        peer.pointee.subscriptions.removeAll()
        releasePausedPublishers(of: peer)
        releaseInput(peer)
        leaveHandshake(peer)
    }

    /// Appends a frame the broker itself produces. Replies (`control`) may exceed the
    /// output limit by ``BrokerConfiguration/controlReplyAllowance``; a peer that piles up
    /// more without reading is closed with `replies_not_read`, queued right after the frame
    /// it is reading, so broker memory stays bounded and the peer still learns why.
    private func enqueue(_ frame: Frame, to peer: PeerPointer, control: Bool = true) {
        if control && peer.pointee.output.count > peer.pointee.outputLimit + configuration.controlReplyAllowance {
            let discarded = peer.pointee.output.truncateToFrameBoundary()
            statistics.repliesNotRead &+= 1
            fail(peer, .repliesNotRead,
                "more than \(configuration.controlReplyAllowance) bytes of replies piled up past the output limit of "
                    + "\(peer.pointee.outputLimit) bytes without being read; \(discarded) queued bytes were discarded")
            return
        }
        let bytes = FrameEncoder.encode(frame)
        peer.pointee.output.append(bytes)
        touch(peer)
    }

    // MARK: - Timers and shutdown

    /// The once-a-second sweep: closes peers that missed the handshake deadline or sat on
    /// an incomplete frame past the frame timeout, frees the buffers of peers with nothing
    /// queued (idle connections cost no buffer memory), and returns closing peers whose
    /// linger deadline has passed (the server closes those sockets).
    func expireDeadlines(now: Double) -> [PeerPointer] {
        clock = now
        var expired: [PeerPointer] = []
        for case let peer? in peers {
            peer.pointee.output.releaseStorageIfEmpty()
            peer.pointee.input.releaseStorageIfEmpty()
            switch peer.pointee.state {
            case .handshaking where now >= peer.pointee.handshakeDeadline:
                fail(peer, .handshakeTimeout, "no HELLO within \(configuration.handshakeTimeout) seconds")
            case .handshaking, .active:
                if !peer.pointee.input.isEmpty && !peer.pointee.isReadPaused
                    && now - peer.pointee.inputSince >= configuration.frameTimeout
                {
                    statistics.frameTimeouts &+= 1
                    fail(peer, .frameTimeout,
                        "a frame was still incomplete \(configuration.frameTimeout) seconds after its first byte "
                            + "(\(peer.pointee.input.count) bytes received)")
                }
            case .closing where now >= peer.pointee.closeDeadline:
                expired.append(peer)
            default:
                break
            }
        }
        return expired
    }

    /// Says GOODBYE to every peer; each closes once its queued output is written or the
    /// shutdown grace period ends.
    func beginShutdown(now: Double) {
        clock = now
        shuttingDown = true
        for case let peer? in peers where peer.pointee.state == .active || peer.pointee.state == .handshaking {
            enqueue(.goodbye(Goodbye(reason: ErrorCode.brokerShuttingDown.rawValue, message: "broker shutting down")),
                to: peer, control: false)
            startClosing(peer, reason: "broker shutting down", linger: configuration.shutdownGrace)
        }
    }

    private func peerMetadata(_ peer: PeerPointer, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "peer": "\(peer.pointee.id)", "pid": "\(peer.pointee.credentials.pid)", "uid": "\(peer.pointee.credentials.uid)",
        ]
        if !peer.pointee.name.isEmpty { metadata["name"] = "\(peer.pointee.name)" }
        metadata.merge(extra) { _, new in new }
        return metadata
    }
}
