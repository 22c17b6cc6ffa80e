import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Frames other than MESSAGE from the broker: replies, PING, GOODBYE, DROPPED, and
/// protocol violations.
extension IOLoop {
    func handleControlFrame(_ type: FrameType, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
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
            } else if error.knownCode == .subscriptionRevoked {
                // Unsolicited: request_id carries the subscription id (PROTOCOL.md §4.10).
                connection.revokeSubscription(error.requestID, error)
                refreshTargetsIfNeeded()
            } else if error.knownCode == .unknownCall {
                // About a REPLY this connection sent: request_id carries the call id.
                connection.emit(.replyRefused(HeraldError.fromBroker(error)))
            } else if connection.completeRequest(error.requestID, error: error) == .unknown
                && !connection.failCall(error.requestID, error, topic: nil)
            {
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
        case .retained(let retained):
            stageRetained(retained)
        case .call(let call):
            stageCall(call)
        case .response(let response):
            var attachment: MessageAttachment?
            if let block = response.descriptors {
                // Taken whether or not the call still waits, so the queue stays in line.
                guard let attached = self.attachment(for: block) else { return }
                attachment = attached
            }
            connection.takeCall(response.requestID)?(.success(Connection.Answer(response: response, attachment: attachment)))
        case .direct(let delivery):
            stageDirect(delivery)
        case .hello, .welcome, .subscribe, .unsubscribe, .publish, .message, .request, .reply, .send, .will, .monitored:
            protocolViolation("the broker sent \(type), which brokers do not send after the handshake")
        }
    }

    /// Stages a topic's retained message for the subscription it names (just confirmed by
    /// its OK), as a MESSAGE frame in a run of its own marked retained. A subscription the
    /// application has ended since gets nothing.
    func stageRetained(_ retained: RetainedDelivery) {
        let delivery = Delivery(senderID: retained.senderID, sender: retained.sender, topic: retained.topic, payload: retained.payload)
        _ = stageAlone(delivery, where: { $0.ids.contains(retained.subscriptionID) }) { buffer, frame, charge in
            buffer.appendRetained(frame: frame, retainedAt: max(1, retained.retainedAt), charge: charge)
        }
    }

    /// Stages a request for the responder subscription it names, as a MESSAGE frame in a
    /// run of its own marked with its call id. If that subscription has ended meanwhile,
    /// the request is failed back to its requester at once rather than left to time out.
    func stageCall(_ call: Call) {
        let delivery = Delivery(senderID: call.senderID, sender: call.sender, topic: call.topic, payload: call.payload)
        let staged = stageAlone(delivery, where: { $0.ids.contains(call.subscriptionID) }) { buffer, frame, charge in
            buffer.appendCall(frame: frame, callID: call.callID, charge: charge)
        }
        if !staged {
            try? connection.reply(callID: call.callID, status: IncomingRequest.notServedStatus,
                payload: Array("the responder stopped serving this topic".utf8))
        }
    }

    /// Stages a direct message for the bus's direct inbox (``Bus/directMessages()``). The
    /// broker sends DIRECT only to a client that announced it accepts them, so a bus without
    /// an inbox receiving one is a broker error.
    func stageDirect(_ delivery: Delivery) {
        var attachment: MessageAttachment?
        if let block = delivery.descriptors {
            guard let attached = self.attachment(for: block) else { return }
            attachment = attached
        }
        guard let inbox = connection.directInbox else {
            protocolViolation("the broker sent a DIRECT frame, which this client did not ask for")
            return
        }
        _ = stageAlone(delivery, where: { $0 === inbox }) { buffer, frame, charge in
            if let attachment {
                buffer.appendAttached(frame: frame, attachment: attachment, charge: charge + SubscriptionState.attachmentCharge(attachment))
            } else {
                buffer.appendAlone(frame: frame, charge: charge)
            }
        }
    }

    /// Stages `delivery` as a MESSAGE frame for the one subscription `isTarget` picks, through
    /// `append` (a run of its own). False if no current subscription is picked.
    private func stageAlone(
        _ delivery: Delivery, where isTarget: (SubscriptionState) -> Bool, _ append: (DeliveryBuffer, UnsafeRawBufferPointer, Int) -> Void
    ) -> Bool {
        // The target list is only re-read with nothing staged (as after an OK).
        deliverStaged()
        refreshTargetsIfNeeded()
        guard let index = targets.firstIndex(where: { isTarget($0.state) }) else { return false }
        let frame = FrameEncoder.encode(.message(delivery))
        let staged = targets[index].staged
        if staged.isEmpty { touched.append(index) }
        let charge = SubscriptionState.charge(topicLength: delivery.topic.count, payloadLength: delivery.payload.count)
        frame.withUnsafeBytes { append(staged, $0, charge) }
        return true
    }

    func protocolViolation(_ what: String) {
        finish(reason: .connectionLost("protocol error from the broker: \(what)"), failSubscriptions: true)
    }

    func finish(reason: HeraldError?, failSubscriptions: Bool) {
        guard !finished else { return }
        finished = true
        deliverStaged()
        if let reason, closeDeadline == nil, connection.options.reconnect != nil, IOLoop.isReconnectable(reason) {
            // The bus outlives its broker: `run()` reconnects instead of ending the connection.
            lostReason = reason
            return
        }
        connection.finish(reason: reason, failSubscriptions: failSubscriptions)
    }

    /// Whether losing the session for `reason` is worth reconnecting: the broker went away
    /// or the socket failed, as opposed to the broker refusing this client.
    static func isReconnectable(_ reason: HeraldError) -> Bool {
        switch reason {
        case .connectionClosed, .connectionLost: true
        default: false
        }
    }
}
