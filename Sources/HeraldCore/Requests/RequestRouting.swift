import HeraldProtocol
import Logging

/// Request/reply (PROTOCOL.md §4.14–§4.17, §6.4): a REQUEST goes to one responder
/// subscription that matches its topic, as a CALL; that responder's REPLY goes back to the
/// requester only, as a RESPONSE. Off the hot path: plain PUBLISH routing never comes here,
/// and responder subscriptions live in an index of their own (``BrokerCore/responders``), so
/// they add nothing to a publish route.
extension BrokerCore {
    /// A REQUEST from `peer`. Checks run in the order of PROTOCOL.md §3.5: flags, then the
    /// fixed fields and `aux`, then the topic, shutdown, the policy, the request id, the
    /// connection's quota, and last whether anyone can answer.
    func handleRequest(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        guard let frame = checkAddressedFrame(peer, .request, header, body, fixedSize: 8, brokerTopics: true) else { return }
        let (requestID, topic, payload) = (frame.requestID, frame.topic, frame.payload)
        if Self.isBrokerServed(topic) {
            answerBrokerRequest(peer, requestID: requestID, topic: topic)
            return
        }
        let timeout = UInt32(littleEndian: frame.fixed.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        // Asking on a topic is publishing to it, as far as the policy is concerned.
        if let rule = peer.pointee.access.publishDenial(topic) {
            deny(peer, requestID: requestID, action: "requesting on", target: String(decoding: topic.prefix(128), as: UTF8.self), rule: rule)
            return
        }
        guard !requests.isWaiting(peer.pointee.id, requestID) else {
            requestError(peer, .duplicateRequest, requestID: requestID,
                "request id \(requestID) is already waiting for a reply on this connection")
            return
        }
        guard requests.waitingCount(of: peer.pointee.id) < configuration.maxPendingRequestsPerPeer else {
            statistics.requestsRefused &+= 1
            requestError(peer, .tooManyRequests, requestID: requestID,
                "this connection already has the maximum of \(configuration.maxPendingRequestsPerPeer) requests waiting for a reply")
            return
        }
        let callLength = header.frameLength + ProtocolLimits.callAllowance
        switch chooseResponder(for: topic, callLength: callLength) {
        case .none:
            statistics.requestsWithoutResponder &+= 1
            answer(peer, .noResponders, requestID: requestID,
                "no responder is subscribed to '\(String(decoding: topic.prefix(128), as: UTF8.self))'")
        case .allBusy(let count):
            statistics.requestsRefused &+= 1
            requestError(peer, .responderBusy, requestID: requestID,
                "\(count == 1 ? "the responder" : "all \(count) responders") for '\(String(decoding: topic.prefix(128), as: UTF8.self))' "
                    + "have more output queued than their output limit; the request was not sent")
        case .chosen(let responder, let subscriptionID):
            let deadline = timeout == 0 ? Double.infinity : clock + Double(timeout) / 1000
            // The topic is kept only while someone monitors: a reply is copied to the monitors of its request's topic.
            let callID = requests.add(
                requester: peer.pointee.id, requestID: requestID, responder: responder.pointee.id, deadline: deadline,
                topic: monitors.count > 0 ? Array(topic) : nil)
            // Written in place, as a MESSAGE is: header, the requester's sender block, the two
            // ids, then the REQUEST's topic and payload copied once.
            let sender = SenderBlock(senderID: peer.pointee.id, credentials: peer.pointee.senderCredentials)
            let topicAndPayload = frame.topicAndPayload
            queueInPlace(callLength, to: responder) { out in
                FrameHeader(bodyLength: UInt32(callLength - FrameHeader.size), type: FrameType.call.rawValue, aux: header.aux).store(to: out)
                sender.store(to: out + FrameHeader.size)
                (out + FrameHeader.size + SenderBlock.size).storeBytes(of: callID.littleEndian, as: UInt32.self)
                (out + FrameHeader.size + SenderBlock.size + 4).storeBytes(of: subscriptionID.littleEndian, as: UInt32.self)
                if let bytes = topicAndPayload.baseAddress {
                    (out + FrameHeader.size + SenderBlock.size + 8).copyMemory(from: bytes, byteCount: topicAndPayload.count)
                }
            }
            responder.pointee.messagesReceived &+= 1
            statistics.requestsRouted &+= 1
            copyToMonitors(.request, from: peer, target: responder.pointee.id, callID: callID, status: 0, matchTopic: topic,
                topic: topic, payload: payload)
        }
    }

    /// Who answers a request: one of the responder subscriptions matching `topic`, taken in
    /// turn so several responders share the load. A responder that is closing, draining for
    /// shutdown, not allowed by the policy to receive the topic, or whose output is past its
    /// limit (it would not read the call soon) is passed over.
    private func chooseResponder(for topic: UnsafeRawBufferPointer, callLength: Int) -> ResponderChoice {
        routeEpoch &+= 1
        let epoch = routeEpoch
        var candidates: [(peer: PeerPointer, subscriptionID: UInt32)] = []
        responders.forEachMatch(topic) { entry in
            let peer = entry.peer
            guard peer.pointee.routeMark != epoch else { return }
            peer.pointee.routeMark = epoch
            guard peer.pointee.state == .active, !peer.pointee.drainingForShutdown, peer.pointee.access.mayReceive(topic) else { return }
            candidates.append((peer, entry.subscriptionID))
        }
        guard !candidates.isEmpty else { return .none }
        // The index's order is stable, so taking turns by a counter spreads the requests.
        let start = Int(truncatingIfNeeded: responderTurn % UInt64(candidates.count))
        responderTurn &+= 1
        for step in 0..<candidates.count {
            let (peer, subscriptionID) = candidates[(start + step) % candidates.count]
            let queued = peer.pointee.output.count
            if queued > 0 && queued + callLength > peer.pointee.outputLimit { continue }
            return .chosen(peer, subscriptionID)
        }
        return .allBusy(candidates.count)
    }

    private enum ResponderChoice {
        case none
        case allBusy(Int)
        case chosen(PeerPointer, UInt32)
    }

    /// A REPLY from `peer`: handed to the requester as a RESPONSE, if the call is waiting
    /// for this connection's answer.
    func handleReply(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let callID = body.count >= 4 ? UInt32(littleEndian: body.loadUnaligned(as: UInt32.self)) : 0
        guard header.flags == 0 else {
            requestError(peer, .unsupportedFlags, requestID: callID,
                "REPLY flag bits 0x\(String(header.flags, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        }
        guard header.aux == 0 else {
            fail(peer, .malformedFrame, "REPLY with a non-zero aux field")
            return
        }
        guard body.count >= 8 else {
            fail(peer, .malformedFrame, "REPLY body of \(body.count) bytes is shorter than its 8 fixed bytes")
            return
        }
        let status = UInt32(littleEndian: body.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        guard let call = requests.answer(responder: peer.pointee.id, callID: callID) else {
            requestError(peer, .unknownCall, requestID: callID,
                "no call \(callID) is waiting for this connection's reply (already answered, timed out, its requester gone, or never sent here)")
            return
        }
        guard let requester = peers.pointer(id: call.requester), requester.pointee.state == .active,
            !requester.pointee.drainingForShutdown
        else {
            // The requester said goodbye to a stopping broker: its library failed the request
            // when the session ended, and nothing more is routed to it.
            statistics.responsesUndeliverable &+= 1
            return
        }
        let replyPayload = UnsafeRawBufferPointer(rebasing: body[8...])
        let responseLength = FrameHeader.size + body.count + ProtocolLimits.callAllowance
        let queued = requester.pointee.output.count
        // A response is never dropped. One frame may go past the output limit; a requester
        // that has not read that much while waiting for answers is disconnected, and told so.
        if queued > 0 && queued + responseLength > requester.pointee.outputLimit + configuration.maxFrameSize + ProtocolLimits.callAllowance {
            statistics.slowConsumersDisconnected &+= 1
            logger.warning(
                "disconnecting a requester that does not read its responses",
                metadata: peerMetadata(requester, ["queued": "\(queued)", "limit": "\(requester.pointee.outputLimit)"]))
            truncateOutputToFrameBoundary(of: requester)
            fail(requester, .slowConsumer,
                "fell more than \(requester.pointee.outputLimit) bytes behind while waiting for responses; the response to request \(call.requestID) was not delivered",
                linger: configuration.slowConsumerLinger)
            return
        }
        // Written in place: header, the responder's sender block, request id, status, payload.
        let sender = SenderBlock(senderID: peer.pointee.id, credentials: peer.pointee.senderCredentials)
        queueInPlace(responseLength, to: requester) { out in
            FrameHeader(bodyLength: UInt32(responseLength - FrameHeader.size), type: FrameType.response.rawValue, aux: 0).store(to: out)
            sender.store(to: out + FrameHeader.size)
            (out + FrameHeader.size + SenderBlock.size).storeBytes(of: call.requestID.littleEndian, as: UInt32.self)
            (out + FrameHeader.size + SenderBlock.size + 4).storeBytes(of: status.littleEndian, as: UInt32.self)
            if let bytes = replyPayload.baseAddress {
                (out + FrameHeader.size + SenderBlock.size + 8).copyMemory(from: bytes, byteCount: replyPayload.count)
            }
        }
        attachDescriptors(toFrameOf: responseLength, queuedFor: requester)
        statistics.responsesDelivered &+= 1
        if let topic = call.topic {
            topic.withUnsafeBytes { topic in
                copyToMonitors(.reply, from: peer, target: requester.pointee.id, callID: callID, status: status, matchTopic: topic,
                    topic: UnsafeRawBufferPointer(start: nil, count: 0), payload: replyPayload)
            }
        }
    }

    /// `peer` is going away: the requests it was asked to answer fail at once for their
    /// requesters (`responder_gone`), and those it asked are forgotten.
    func dropRequests(of peer: PeerPointer) {
        requests.removeRequests(of: peer.pointee.id)
        for call in requests.removeCalls(to: peer.pointee.id) {
            guard let requester = peers.pointer(id: call.requester), requester.pointee.isOpen else { continue }
            statistics.requestsFailedByResponderExit &+= 1
            answer(requester, .responderGone, requestID: call.requestID,
                "the responder (peer \(peer.pointee.id), pid \(peer.pointee.credentials.pid)) closed its connection before replying")
        }
    }

    /// Fails, with `request_timeout`, the requests whose `timeout_ms` has passed.
    func expireRequests(now: Double) {
        for call in requests.removeExpired(now: now) {
            guard let requester = peers.pointer(id: call.requester), requester.pointee.isOpen else { continue }
            statistics.requestTimeouts &+= 1
            answer(requester, .requestTimeout, requestID: call.requestID,
                "no reply from the responder (peer \(call.responder)) within the request's timeout")
        }
    }

    /// Queues a frame of `length` bytes for `peer`, written in place by `write` (no frame
    /// value, no intermediate array).
    @inline(__always)
    func queueInPlace(_ length: Int, to peer: PeerPointer, _ write: (UnsafeMutableRawPointer) -> Void) {
        let out = peer.pointee.output.reserve(length)
        write(out)
        peer.pointee.output.commit(length)
        peer.pointee.chargeQueued(length)
        touch(peer)
    }

    /// Whether the table of waiting requests is consistent, and only names open peers (for
    /// tests and fuzzing).
    public var requestTableIsConsistent: Bool { requests.isConsistent() }

    /// A non-fatal ERROR that is an ordinary outcome of a request (nobody answers, the
    /// responder left, the time ran out), not a mistake of the peer: counted by the caller
    /// and logged at debug level only, so a busy requester cannot fill the log.
    private func answer(_ peer: PeerPointer, _ code: ErrorCode, requestID: UInt32, _ message: String) {
        logger.debug("request answered with an error: \(code)", metadata: peerMetadata(peer, ["request": "\(requestID)", "error": "\(message)"]))
        enqueue(.error(ErrorFrame(code, requestID: requestID, message: message)), to: peer)
    }
}
