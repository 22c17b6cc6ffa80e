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
        case .retained(let retained):
            stageRetained(retained)
        case .hello, .welcome, .subscribe, .unsubscribe, .publish, .message:
            protocolViolation("the broker sent \(type), which brokers do not send after the handshake")
        }
    }

    /// Stages a topic's retained message for the subscription it names (just confirmed by
    /// its OK), as a MESSAGE frame in a run of its own marked retained. A subscription the
    /// application has ended since gets nothing.
    func stageRetained(_ retained: RetainedDelivery) {
        // The target list is only re-read with nothing staged (as after an OK).
        deliverStaged()
        refreshTargetsIfNeeded()
        guard let index = targets.firstIndex(where: { $0.state.ids.contains(retained.subscriptionID) }) else { return }
        let frame = FrameEncoder.encode(
            .message(Delivery(senderID: retained.senderID, sender: retained.sender, topic: retained.topic, payload: retained.payload)))
        let staged = targets[index].staged
        if staged.isEmpty { touched.append(index) }
        frame.withUnsafeBytes {
            staged.appendRetained(
                frame: $0, retainedAt: max(1, retained.retainedAt),
                charge: SubscriptionState.charge(topicLength: retained.topic.count, payloadLength: retained.payload.count))
        }
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
