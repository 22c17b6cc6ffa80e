import HeraldProtocol
import Logging

/// The session's control frames: HELLO and WELCOME, PING, GOODBYE, SUBSCRIBE and UNSUBSCRIBE.
extension BrokerCore {

    /// Handles a whole frame whose header ``checkHeader(_:_:)`` accepted: flags, then aux,
    /// then the body (PROTOCOL.md §3.5).
    func handleControlFrame(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let type = FrameType(rawValue: header.type)!
        if header.flags & FrameFlags.descriptors != 0 && (type == .send || type == .reply) {
            handleWithDescriptors(peer, type, header, body) { header, body in
                if type == .send { handleSend(peer, header, body) } else { handleReply(peer, header, body) }
            }
            return
        }
        switch type {
        case .subscribe:
            // Decoded here rather than by FrameDecoder: a filter that is not UTF-8 is an
            // invalid filter (the session goes on), not a malformed frame.
            handleSubscribe(peer, header, body)
            return
        case .request:
            // Like PUBLISH, the topic is validated by the broker, not by frame decoding.
            handleRequest(peer, header, body)
            return
        case .reply:
            handleReply(peer, header, body)
            return
        case .send:
            handleSend(peer, header, body)
            return
        case .will:
            handleWill(peer, header, body)
            return
        default:
            break
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
            peer.pointee.saidGoodbye = true
            enqueue(.goodbye(Goodbye(reason: 0, message: "goodbye")), to: peer)
            startClosing(peer, reason: "client said goodbye")
        case .unsubscribe(let request):
            guard removeSubscription(request.subscriptionID, of: peer) != nil else {
                requestError(peer, .unknownSubscription, requestID: request.requestID,
                    "no active subscription with id \(request.subscriptionID)")
                return
            }
            enqueue(.ok(requestID: request.requestID), to: peer)
        case .welcome, .error, .ok, .message, .dropped, .retained, .call, .response, .direct, .monitored, .subscribe, .publish, .request, .reply,
            .send, .will:
            // checkHeader refused the broker's types; SUBSCRIBE, PUBLISH, REQUEST, REPLY, SEND and WILL go elsewhere.
            preconditionFailure("\(type) reached the control-frame handler")
        }
    }

    /// The `request_id` an ERROR about a refused frame carries (PROTOCOL.md §4.3): the
    /// request's own id for SUBSCRIBE and UNSUBSCRIBE when the body holds one, else 0.
    /// (PUBLISH errors carry the PUBLISH ordinal instead; see ``publish(_:_:_:)``.)
    static func requestID(of type: FrameType, _ body: UnsafeRawBufferPointer) -> UInt32 {
        guard type == .subscribe || type == .unsubscribe, body.count >= 4 else { return 0 }
        return UInt32(littleEndian: body.loadUnaligned(as: UInt32.self))
    }

    func welcome(_ peer: PeerPointer, _ hello: Hello) {
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
        peer.pointee.connectedAt = wallClock()
        peer.pointee.name = hello.clientName
        peer.pointee.capabilities = hello.capabilities & Capabilities.known
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
                    slowConsumerPolicy: policy, serverName: configuration.serverName,
                    capabilities: UInt16(truncatingIfNeeded: peer.pointee.capabilities))), to: peer)
        logger.info(
            "peer connected",
            metadata: peerMetadata(peer, ["gid": "\(peer.pointee.credentials.gid)", "policy": "\(policy)",
                "output_limit": "\(limit)"]))
        announcePresence(of: peer, connected: true)
    }

    /// Removes `peer`'s subscription `subscriptionID` from the index and its uid's quota;
    /// returns its filter, or nil if there is no such subscription.
    @discardableResult
    func removeSubscription(_ subscriptionID: UInt32, of peer: PeerPointer) -> TopicFilter? {
        guard let filter = peer.pointee.subscriptions.removeValue(forKey: subscriptionID) else { return nil }
        if peer.pointee.responderIDs.remove(subscriptionID) != nil {
            responders.remove(filter, peer: peer, subscriptionID: subscriptionID)
        } else {
            index.remove(filter, peer: peer, subscriptionID: subscriptionID)
        }
        if peer.pointee.monitorIDs.remove(subscriptionID) != nil { monitors.remove(filter, peer: peer, subscriptionID: subscriptionID) }
        charge(peer.pointee.credentials.uid) { $0.subscriptions -= 1 }
        return filter
    }

    func handleSubscribe(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let defined = FrameFlags.responder | FrameFlags.monitor
        guard header.flags & ~defined == 0 else {
            // Like every other frame with undefined flags: refused, the session goes on.
            requestError(peer, .unsupportedFlags, requestID: Self.requestID(of: .subscribe, body),
                "SUBSCRIBE flag bits 0x\(String(header.flags & ~defined, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        }
        let isResponder = header.flags & FrameFlags.responder != 0
        let isMonitor = header.flags & FrameFlags.monitor != 0
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
        guard !peer.pointee.drainingForShutdown else {
            requestError(peer, .brokerShuttingDown, requestID: requestID,
                "the broker is shutting down (it said GOODBYE); subscribe to the next one")
            return
        }
        if let rule = peer.pointee.access.subscribeDenial(filter) {
            deny(peer, requestID: requestID, action: "subscribing to", target: filter.text, rule: rule)
            return
        }
        if isMonitor && (isResponder || !mayMonitor(peer)) {
            statistics.policyDenials &+= 1
            requestError(peer, .forbidden, requestID: requestID,
                isResponder
                    ? "a subscription cannot both answer requests and monitor"
                    : "monitoring the bus is allowed to root and uid \(brokerUID) (the broker's) only")
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
        let uid = peer.pointee.credentials.uid
        guard usage(of: uid).subscriptions < configuration.maxSubscriptionsPerUID else {
            statistics.quotaRefusals &+= 1
            requestError(peer, .tooManySubscriptions, requestID: requestID,
                "uid \(uid) already holds the maximum of \(configuration.maxSubscriptionsPerUID) subscriptions over all its connections")
            return
        }
        charge(uid) { $0.subscriptions += 1 }
        peer.pointee.subscriptions[subscriptionID] = filter
        if isResponder {
            // It answers requests; it receives no messages, so it has no retained ones either.
            peer.pointee.responderIDs.insert(subscriptionID)
            responders.insert(filter, peer: peer, subscriptionID: subscriptionID)
            enqueue(.ok(requestID: requestID), to: peer)
            return
        }
        index.insert(filter, peer: peer, subscriptionID: subscriptionID)
        if isMonitor {
            peer.pointee.monitorIDs.insert(subscriptionID)
            monitors.insert(filter, peer: peer, subscriptionID: subscriptionID)
        }
        enqueue(.ok(requestID: requestID), to: peer)
        // Right after the OK and before anything routed later: the topics' current values.
        deliverRetained(matching: filter, to: peer, subscriptionID: subscriptionID)
    }
}
