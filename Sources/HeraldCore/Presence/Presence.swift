import HeraldProtocol
import Logging

/// Presence (PROTOCOL.md §6.5): the broker publishes `$SYS/peers/connected` when a peer is
/// welcomed and `$SYS/peers/disconnected` when a welcomed peer goes, so services can react to
/// a peer appearing or vanishing (what D-Bus's NameOwnerChanged is used for); and a peer's
/// last will (WILL, §4.20), published for it if it goes without GOODBYE.
extension BrokerCore {
    /// Where presence events are published.
    static let connectedTopic = "$SYS/peers/connected"
    static let disconnectedTopic = "$SYS/peers/disconnected"

    /// Publishes `$SYS/peers/connected` or `$SYS/peers/disconnected` for `peer`: a JSON object
    /// with its id, name, pid, uid, gid and, when it went, why.
    func announcePresence(of peer: PeerPointer, connected: Bool, reason: String? = nil) {
        guard !shuttingDown else { return }  // nothing is routed while the broker stops
        var json = "{\"peer\":\(peer.pointee.id),\"name\":\(JSONText.quoted(peer.pointee.name)),"
        json += "\"pid\":\(peer.pointee.senderCredentials.pid),\"uid\":\(peer.pointee.credentials.uid),\"gid\":\(peer.pointee.credentials.gid)"
        if let reason { json += ",\"reason\":\(JSONText.quoted(reason))" }
        json += "}"
        publishFromBroker(connected ? Self.connectedTopic : Self.disconnectedTopic, Array(json.utf8))
        statistics.presenceEvents &+= 1
    }

    /// Delivers a message the broker itself publishes (sender id 0, the broker's pid and uid)
    /// to every subscriber of `topic` the policy lets receive it. Off the hot path (one per
    /// connect or disconnect). A subscriber past its output limit meets its slow-consumer
    /// policy; under backpressure (the broker cannot be paused) it is queued within the
    /// reply allowance, and past that the subscriber is disconnected and told why.
    func publishFromBroker(_ topic: String, _ payload: [UInt8]) {
        let topicBytes = Array(topic.utf8)
        let frame = FrameEncoder.encode(
            .message(
                Delivery(
                    senderID: 0, sender: PeerCredentials(pid: brokerPID, uid: brokerUID, gid: brokerGID), topic: topicBytes,
                    payload: payload)))
        routeEpoch &+= 1
        let epoch = routeEpoch
        var receivers: [PeerPointer] = []
        topicBytes.withUnsafeBytes { topic in
            index.forEachMatch(topic) { entry in
                let peer = entry.peer
                guard peer.pointee.routeMark != epoch else { return }
                peer.pointee.routeMark = epoch
                guard peer.pointee.state == .active, !peer.pointee.drainingForShutdown, peer.pointee.access.mayReceive(topic) else { return }
                receivers.append(peer)
            }
        }
        for subscriber in receivers {
            if queueBrokerFrame(frame, to: subscriber, about: "broker events ('\(topic)')") { statistics.messagesDelivered &+= 1 }
        }
    }

    /// Queues a frame the broker made itself (nobody to pause) for `subscriber`. Past its
    /// output limit its slow-consumer policy applies; under backpressure it is queued within
    /// the reply allowance, and past that the subscriber is disconnected and told why.
    /// Returns whether the frame was queued.
    @discardableResult
    func queueBrokerFrame(_ frame: [UInt8], to subscriber: PeerPointer, about what: String) -> Bool {
        let queued = subscriber.pointee.output.count
        if (queued > 0 && queued + frame.count > subscriber.pointee.outputLimit) || subscriber.pointee.pendingDroppedMessages != 0 {
            if subscriber.pointee.policy == .backpressure {
                guard queued + frame.count <= subscriber.pointee.outputLimit + configuration.controlReplyAllowance else {
                    statistics.slowConsumersDisconnected &+= 1
                    truncateOutputToFrameBoundary(of: subscriber)
                    fail(subscriber, .slowConsumer, "fell more than the output limit and the reply allowance behind on \(what)",
                        linger: configuration.slowConsumerLinger)
                    return false
                }
            } else if !admitOverLimit(subscriber, publisher: nil, length: frame.count) {
                return false
            }
        }
        frame.withUnsafeBytes { subscriber.pointee.output.append($0) }
        subscriber.pointee.chargeQueued(frame.count)
        subscriber.pointee.messagesReceived &+= 1
        touch(subscriber)
        return true
    }

    /// A WILL from `peer`: sets (or, with an empty topic and payload, clears) the message the
    /// broker publishes for it if it goes without GOODBYE. Checked as a PUBLISH would be when
    /// set (flags, topic, policy), and published through the PUBLISH path when it fires, so
    /// the policy and retained quotas in force then apply too. Answered OK or ERROR.
    func handleWill(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        let requestID = body.count >= 4 ? UInt32(littleEndian: body.loadUnaligned(as: UInt32.self)) : 0
        guard header.flags & ~FrameFlags.retain == 0 else {
            requestError(peer, .unsupportedFlags, requestID: requestID,
                "WILL flag bits 0x\(String(header.flags & ~FrameFlags.retain, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        }
        guard body.count >= 4 else {
            fail(peer, .malformedFrame, "WILL body of \(body.count) bytes is shorter than its 4 fixed bytes")
            return
        }
        let topicLength = Int(header.aux)
        guard topicLength <= body.count - 4 else {
            fail(peer, .malformedFrame, "WILL topic length \(topicLength) exceeds the \(body.count - 4) bytes after its request id")
            return
        }
        let topicAndPayload = UnsafeRawBufferPointer(rebasing: body[4...])
        if topicAndPayload.isEmpty {
            peer.pointee.lastWill = nil
            enqueue(.ok(requestID: requestID), to: peer)
            return
        }
        let topic = UnsafeRawBufferPointer(rebasing: topicAndPayload[..<topicLength])
        let shown = String(decoding: topic.prefix(128), as: UTF8.self)
        if let problem = Topic.validatePublishable(topic, maxLength: configuration.maxTopicLength) {
            requestError(peer, problem.errorCode(isFilter: false), requestID: requestID, "will topic '\(shown)' \(problem)")
            return
        }
        if let rule = peer.pointee.access.publishDenial(topic) {
            deny(peer, requestID: requestID, action: "a last will on", target: shown, rule: rule)
            return
        }
        // Kept as the PUBLISH it will be: the header, then topic and payload.
        var will = [UInt8](repeating: 0, count: FrameHeader.size)
        will.withUnsafeMutableBytes {
            FrameHeader(bodyLength: UInt32(topicAndPayload.count), type: FrameType.publish.rawValue, flags: header.flags, aux: header.aux)
                .store(to: $0.baseAddress!)
        }
        will.append(contentsOf: topicAndPayload)
        peer.pointee.lastWill = will
        enqueue(.ok(requestID: requestID), to: peer)
    }

    /// Publishes `peer`'s last will, if it has one and is going without GOODBYE (and the
    /// broker is not stopping: then every peer goes, and nothing is routed).
    func fireLastWill(of peer: PeerPointer) {
        guard let will = peer.pointee.lastWill, peer.pointee.wasWelcomed, !peer.pointee.saidGoodbye, !shuttingDown else { return }
        peer.pointee.lastWill = nil
        statistics.willsPublished &+= 1
        logger.info("publishing the last will of a peer that went without GOODBYE", metadata: peerMetadata(peer, [:]))
        will.withUnsafeBytes { raw in
            publish(peer, raw.baseAddress!, FrameHeader(loadingFrom: raw.baseAddress!))
        }
    }
}

/// JSON text for the broker's own payloads.
enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
