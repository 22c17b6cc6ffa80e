import HeraldProtocol
import Logging

/// Routing a PUBLISH to its subscribers through the publisher's route cache.
extension BrokerCore {
    // MARK: - Routing (hot path)
    //
    // Unsafe and dense on purpose: no allocation, reference counting or exclusivity checks
    // per message. Peers are reached through pointers; the route is a manually managed list;
    // a delivery is an 8-byte header, a 24-byte sender block and one memcpy of topic+payload.

    @inline(__always)
    func publish(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        publisher.pointee.publishOrdinal &+= 1
        let topicLength = Int(header.aux)
        let bodyLength = Int(header.bodyLength)
        guard header.flags == 0 else {
            // Off the hot path: a retained PUBLISH is stored, then routed like any other.
            publishFlagged(publisher, frame, header)
            return
        }
        // The check of `topicFits`, written out: calling it here measured 8 % slower on the
        // fan-out benchmark (1 -> 8: 65 -> 70 ns per message), so the hot path keeps its copy.
        guard topicLength <= bodyLength else {
            fail(publisher, .malformedFrame, "PUBLISH topic length \(topicLength) exceeds its body of \(bodyLength) bytes")
            return
        }
        guard ensureRoute(publisher, frame + FrameHeader.size, topicLength) else { return }
        deliver(publisher, frame, header)
    }

    /// Whether a PUBLISH's topic length (aux) fits in its body; if not, the peer's byte
    /// stream cannot be trusted and it is failed with `malformed_frame`. (Off the hot path:
    /// `publish` has its own copy of the check.)
    func topicFits(_ publisher: PeerPointer, _ header: FrameHeader) -> Bool {
        guard Int(header.aux) <= Int(header.bodyLength) else {
            fail(publisher, .malformedFrame, "PUBLISH topic length \(header.aux) exceeds its body of \(header.bodyLength) bytes")
            return false
        }
        return true
    }

    /// Whether `publisher`'s cached route is for `topic`, recomputing it if not; false (after
    /// an ERROR) when the topic may not be published.
    @inline(__always)
    func ensureRoute(_ publisher: PeerPointer, _ topic: UnsafeRawPointer, _ topicLength: Int) -> Bool {
        if publisher.pointee.routeGeneration != index.generation || publisher.pointee.routeTopic.count != topicLength
            // Inline compare: a memcmp call per message was a tenth of the routing loop.
            || !ByteComparison.equal(publisher.pointee.routeTopic.readPointer, topic, count: topicLength)
        {
            return refreshRoute(publisher, UnsafeRawBufferPointer(start: topic, count: topicLength))
        }
        return true
    }

    /// Queues the PUBLISH `frame` as a MESSAGE to every subscriber on `publisher`'s route.
    @inline(__always)
    func deliver(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        let topicLength = Int(header.aux)
        let bodyLength = Int(header.bodyLength)
        let topic = frame + FrameHeader.size
        publisher.pointee.messagesPublished &+= 1
        statistics.messagesPublished &+= 1

        let routeCount = publisher.pointee.route.count
        guard routeCount > 0 else { return }
        let route = publisher.pointee.route.base!
        // Sizes and the sender block are computed once per message, not per subscriber (a
        // `static let` of another module is an accessor call).
        let senderOffset = FrameHeader.size
        let topicOffset = senderOffset + SenderBlock.size
        let deliveryLength = topicOffset + bodyLength
        let sender = SenderBlock(senderID: publisher.pointee.id, credentials: publisher.pointee.senderCredentials)
        let deliveryHeader = FrameHeader(
            bodyLength: UInt32(truncatingIfNeeded: deliveryLength - senderOffset), type: FrameType.message.rawValue,
            aux: UInt16(truncatingIfNeeded: topicLength))
        // The per-uid quota on queued output, read once per message.
        let uidQuota = configuration.maxQueuedBytesPerUID
        var delivered = 0
        for position in 0..<routeCount {
            let subscriber = route[position]
            let queued = subscriber.pointee.output.count
            let uidQueued = subscriber.pointee.queuedForUID
            if (queued > 0 && queued + deliveryLength > subscriber.pointee.outputLimit)
                || subscriber.pointee.pendingDroppedMessages != 0
                || (uidQueued + deliveryLength > uidQuota && queued > BrokerConfiguration.laggingBacklog)
            {
                if !admitOverLimit(subscriber, publisher: publisher, length: deliveryLength) { continue }
            }
            let out = subscriber.pointee.output.reserve(deliveryLength)
            deliveryHeader.store(to: out)
            sender.store(to: out + senderOffset)
            (out + topicOffset).copyMemory(from: topic, byteCount: bodyLength)
            subscriber.pointee.output.commit(deliveryLength)
            subscriber.pointee.chargeQueued(deliveryLength)
            subscriber.pointee.messagesReceived &+= 1
            delivered &+= 1
            touch(subscriber)
        }
        statistics.messagesDelivered &+= UInt64(delivered)
    }

    /// Recomputes `publisher`'s cached route for `topic`. Returns false (after sending an
    /// ERROR) when the topic is not publishable.
    func refreshRoute(_ publisher: PeerPointer, _ topic: UnsafeRawBufferPointer) -> Bool {
        if let problem = Topic.validatePublishable(topic, maxLength: configuration.maxTopicLength) {
            let shown = String(decoding: topic.prefix(128), as: UTF8.self)
            requestError(
                publisher, problem.errorCode(isFilter: false), requestID: publisher.pointee.publishOrdinal,
                "topic '\(shown)' \(problem)")
            return false
        }
        // The policy is checked here, once per route, never per message: the verdict and the
        // list of permitted receivers are cached with the route.
        if let rule = publisher.pointee.access.publishDenial(topic) {
            deny(publisher, requestID: publisher.pointee.publishOrdinal, action: "publishing to",
                target: String(decoding: topic.prefix(128), as: UTF8.self), rule: rule)
            return false
        }
        routeEpoch &+= 1
        let epoch = routeEpoch
        publisher.pointee.route.removeAll()
        index.forEachMatch(topic) { entry in
            // A peer with several matching filters receives the message once, and only if
            // the policy lets it receive this topic (its subscription may be wider).
            if entry.peer.pointee.routeMark != epoch {
                entry.peer.pointee.routeMark = epoch
                if entry.peer.pointee.access.mayReceive(topic) {
                    publisher.pointee.route.append(entry.peer)
                }
            }
        }
        publisher.pointee.routeTopic.removeAll(keepingStorage: true)
        publisher.pointee.routeTopic.append(topic)
        publisher.pointee.routeGeneration = index.generation
        return true
    }
}
