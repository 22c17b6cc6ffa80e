import HeraldProtocol
import Logging

/// Retained messages (PROTOCOL.md §4.10, §4.13): a PUBLISH with the retain flag is kept as its
/// topic's current value and handed to every later matching subscription, right after the
/// SUBSCRIBE's OK. Off the hot path: a plain PUBLISH never comes here, and a retained one is
/// routed to the current subscribers by the same code as any other.
extension BrokerCore {
    /// A PUBLISH with flags: the retain flag (stored, then routed), or undefined bits (refused).
    /// Checks run in the order of PROTOCOL.md §3.5: flags, then aux, then the topic and the
    /// policy (with the route), then the retained quota.
    func publishFlagged(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        if header.flags & FrameFlags.descriptors != 0 {
            handleWithDescriptors(publisher, .publish, header, UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: Int(header.bodyLength))) {
                header, body in publishWithDescriptors(publisher, body.baseAddress! - FrameHeader.size, header)
            }
            return
        }
        let ordinal = publisher.pointee.publishOrdinal
        let undefined = header.flags & ~FrameFlags.retain
        guard undefined == 0 else {
            requestError(publisher, .unsupportedFlags, requestID: ordinal,
                "PUBLISH flag bits 0x\(String(undefined, radix: 16)) are not defined in this protocol version")
            return
        }
        guard topicFits(publisher, header) else { return }
        let topicLength = Int(header.aux)
        let bodyLength = Int(header.bodyLength)
        let topic = frame + FrameHeader.size
        guard ensureRoute(publisher, topic, topicLength) else { return }
        let message = RetainedMessage(
            topic: Array(UnsafeRawBufferPointer(start: topic, count: topicLength)),
            payload: Array(UnsafeRawBufferPointer(start: topic + topicLength, count: bodyLength - topicLength)),
            senderID: publisher.pointee.id, sender: publisher.pointee.senderCredentials, retainedAt: wallClock())
        let limits = RetainedStore.Limits(
            messagesPerUID: configuration.maxRetainedMessagesPerUID, bytesPerUID: configuration.maxRetainedBytesPerUID)
        // Charged to the uid the kernel reported at connect (the sender block's uid).
        switch retained.retain(message, limits: limits) {
        case .stored, .cleared:
            retainedChanges &+= 1
        case .nothingToClear:
            break
        case .tooManyMessages(let held, let limit):
            refuseRetained(publisher, ordinal, "uid \(message.sender.uid) already holds \(held) retained messages, its maximum of \(limit)")
            return
        case .tooManyBytes(let held, let adding, let limit):
            refuseRetained(publisher, ordinal,
                "uid \(message.sender.uid) holds \(held) bytes of retained messages; \(adding) more would pass its maximum of \(limit)")
            return
        }
        deliver(publisher, frame, header)
    }

    /// A PUBLISH whose descriptors were taken (its block stripped: `frame` points at a header
    /// that is not in memory, only `header` is read): routed like any other, never retained.
    private func publishWithDescriptors(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        guard header.flags == 0 else {
            let retain = header.flags & FrameFlags.retain != 0
            requestError(publisher, .unsupportedFlags, requestID: publisher.pointee.publishOrdinal,
                retain ? "a retained message cannot carry file descriptors (flags 0x01 and 0x80 together); frame ignored"
                    : "PUBLISH flag bits 0x\(String(header.flags, radix: 16)) are not defined in this protocol version; frame ignored")
            return
        }
        guard topicFits(publisher, header) else { return }
        guard ensureRoute(publisher, frame + FrameHeader.size, Int(header.aux)) else { return }
        deliverWithDescriptors(publisher, frame, header)
    }

    /// Over a retained quota: nothing is stored or routed, and the publisher is told why.
    private func refuseRetained(_ publisher: PeerPointer, _ ordinal: UInt32, _ reason: String) {
        statistics.retainedQuotaRefusals &+= 1
        requestError(publisher, .retainedQuotaExceeded, requestID: ordinal,
            "retained PUBLISH refused, nothing was stored or delivered: \(reason)")
    }

    /// Puts back the retained messages of an earlier broker process (a state file or the
    /// service manager's descriptor store). Their `sender_id` becomes 0: peer ids are that
    /// process's and would name connections of this one. Returns how many were restored.
    public func restoreRetained(_ messages: [RetainedMessage]) -> Int {
        for var message in messages {
            message.senderID = 0
            retained.restore(message)
        }
        for uid in Set(messages.map(\.sender.uid)) {
            let usage = retained.usage(of: uid)
            guard usage.messages > configuration.maxRetainedMessagesPerUID || usage.bytes > configuration.maxRetainedBytesPerUID else {
                continue
            }
            logger.warning(
                "restored retained messages exceed a uid's quota; it can add none until it is under it again",
                metadata: ["uid": "\(uid)", "messages": "\(usage.messages)", "bytes": "\(usage.bytes)",
                    "max_messages": "\(configuration.maxRetainedMessagesPerUID)", "max_bytes": "\(configuration.maxRetainedBytesPerUID)"])
        }
        return messages.count
    }

    /// The retained messages as a snapshot, for keeping them across a restart.
    public func retainedSnapshot() -> [UInt8] { RetainedSnapshot.encode(retained.all) }

    /// Queues the retained messages `filter` matches (and the policy lets `peer` receive) for
    /// the subscription just added: RETAINED frames to a peer that announced the capability,
    /// plain MESSAGE frames to one that did not. They count as output like any delivery.
    func deliverRetained(matching filter: TopicFilter, to peer: PeerPointer, subscriptionID: UInt32) {
        guard retained.count > 0 else { return }
        let asRetained = peer.pointee.capabilities & Capabilities.retained != 0
        for message in retained.matching(filter) {
            let permitted = message.topic.withUnsafeBytes { peer.pointee.access.mayReceive($0) }
            guard permitted else { continue }
            let frame: Frame =
                asRetained
                ? .retained(
                    RetainedDelivery(
                        subscriptionID: subscriptionID, retainedAt: message.retainedAt, senderID: message.senderID,
                        sender: message.sender, topic: message.topic, payload: message.payload))
                : .message(Delivery(senderID: message.senderID, sender: message.sender, topic: message.topic, payload: message.payload))
            enqueue(frame, to: peer, control: false)
            peer.pointee.messagesReceived &+= 1
            statistics.retainedDelivered &+= 1
        }
    }
}
