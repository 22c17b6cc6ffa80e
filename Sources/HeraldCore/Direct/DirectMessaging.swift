import HeraldProtocol
import Logging

/// Direct messages (PROTOCOL.md §4.18, §4.19): a SEND names one peer by its peer id and is
/// delivered to it alone, as DIRECT, stamped with the sender's identity (the relay-by-client-id
/// pattern: a service answers whoever wrote to it). Off the hot path: no subscription and no
/// route are involved.
extension BrokerCore {
    /// A SEND from `peer`. Checks run in the order of PROTOCOL.md §3.5: flags, the fixed
    /// fields and `aux`, the topic, shutdown, the target, the policy.
    func handleSend(_ peer: PeerPointer, _ header: FrameHeader, _ body: UnsafeRawBufferPointer) {
        guard let frame = checkAddressedFrame(peer, .send, header, body, fixedSize: 16) else { return }
        let (requestID, topic) = (frame.requestID, frame.topic)
        let targetID = UInt64(littleEndian: frame.fixed.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        let shown = String(decoding: topic.prefix(128), as: UTF8.self)
        guard let target = peers.pointer(id: targetID), target.pointee.state == .active, !target.pointee.drainingForShutdown else {
            statistics.directRefused &+= 1
            requestError(peer, .unknownPeer, requestID: requestID, "no connected peer has id \(targetID)")
            return
        }
        guard target.pointee.capabilities & Capabilities.directInbox != 0 else {
            statistics.directRefused &+= 1
            requestError(peer, .directNotAccepted, requestID: requestID,
                "peer \(targetID) (\(target.pointee.name)) does not accept direct messages")
            return
        }
        guard targetAcceptsAttachment(target, from: peer, .send, requestID: requestID) else { return }
        if let rule = directDenial(from: peer, to: target, topic: topic) {
            deny(peer, requestID: requestID, action: "sending to peer \(targetID) on", target: shown, rule: rule)
            return
        }
        deliverDirect(from: peer, frame.topicAndPayload, topicLength: topic.count, to: target)
        copyToMonitors(.direct, from: peer, target: targetID, callID: 0, status: 0, matchTopic: topic, topic: topic, payload: frame.payload)
    }

    /// The policy's verdict on a direct message (nil: allowed). The sender must be allowed to
    /// publish on the topic and the target to receive it, as for a published message; rules
    /// on who may send to whom directly belong here too once the policy file has them (today
    /// every pair is allowed).
    func directDenial(from sender: PeerPointer, to target: PeerPointer, topic: UnsafeRawBufferPointer) -> PolicyLocation? {
        sender.pointee.access.publishDenial(topic) ?? target.pointee.access.receiveDenial(topic)
    }

    /// Queues a SEND's `topicAndPayload` for `target` as a DIRECT frame: the header, the
    /// 24-byte sender block, then the topic and payload copied once. Past the target's output
    /// limit its slow-consumer policy applies, as for a MESSAGE.
    private func deliverDirect(
        from sender: PeerPointer, _ topicAndPayload: UnsafeRawBufferPointer, topicLength: Int, to target: PeerPointer
    ) {
        let length = FrameHeader.size + SenderBlock.size + topicAndPayload.count
        let queued = target.pointee.output.count
        if (queued > 0 && queued + length > target.pointee.outputLimit) || target.pointee.pendingDroppedMessages != 0 {
            guard admitOverLimit(target, publisher: sender, length: length) else { return }
        }
        let out = target.pointee.output.reserve(length)
        FrameHeader(bodyLength: UInt32(length - FrameHeader.size), type: FrameType.direct.rawValue, aux: UInt16(topicLength)).store(to: out)
        SenderBlock(senderID: sender.pointee.id, credentials: sender.pointee.senderCredentials).store(to: out + FrameHeader.size)
        if let bytes = topicAndPayload.baseAddress {
            (out + FrameHeader.size + SenderBlock.size).copyMemory(from: bytes, byteCount: topicAndPayload.count)
        }
        target.pointee.output.commit(length)
        target.pointee.chargeQueued(length)
        attachDescriptors(toFrameOf: length, queuedFor: target)
        target.pointee.messagesReceived &+= 1
        sender.pointee.messagesPublished &+= 1
        statistics.directDelivered &+= 1
        touch(target)
    }
}
