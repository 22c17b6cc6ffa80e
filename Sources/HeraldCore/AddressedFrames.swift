import HeraldProtocol

/// The frames that carry a request id, fixed fields and a topic (REQUEST and SEND) are
/// checked alike, in the order of PROTOCOL.md §3.5, before what is particular to each.
extension BrokerCore {
    /// The parts of a REQUEST or SEND that passed the common checks.
    struct AddressedFrame {
        /// The frame's `request_id` (its first 4 body bytes).
        var requestID: UInt32
        /// The fixed fields (`fixedSize` bytes, `request_id` first).
        var fixed: UnsafeRawBufferPointer
        var topic: UnsafeRawBufferPointer
        /// The topic and the payload, back to back, as they follow the fixed fields.
        var topicAndPayload: UnsafeRawBufferPointer
        var payload: UnsafeRawBufferPointer
    }

    /// Checks a REQUEST or SEND: flags (`unsupported_flags`, the frame ignored), the fixed
    /// fields and `aux` (fatal `malformed_frame`), the topic (`invalid_topic` and kin), and
    /// that the broker is not shutting down (`broker_shutting_down`). Returns nil after
    /// answering if one fails.
    /// With `brokerTopics`, a `$SYS/broker/…` topic passes (the broker answers requests there).
    func checkAddressedFrame(
        _ peer: PeerPointer, _ type: FrameType, _ header: FrameHeader, _ body: UnsafeRawBufferPointer, fixedSize: Int,
        brokerTopics: Bool = false
    ) -> AddressedFrame? {
        let requestID = body.count >= 4 ? UInt32(littleEndian: body.loadUnaligned(as: UInt32.self)) : 0
        guard header.flags == 0 else {
            requestError(peer, .unsupportedFlags, requestID: requestID,
                "\(type) flag bits 0x\(String(header.flags, radix: 16)) are not defined in this protocol version; frame ignored")
            return nil
        }
        guard body.count >= fixedSize else {
            fail(peer, .malformedFrame, "\(type) body of \(body.count) bytes is shorter than its \(fixedSize) fixed bytes")
            return nil
        }
        let topicLength = Int(header.aux)
        guard topicLength <= body.count - fixedSize else {
            fail(peer, .malformedFrame,
                "\(type) topic length \(topicLength) exceeds the \(body.count - fixedSize) bytes after its fixed fields")
            return nil
        }
        let topic = UnsafeRawBufferPointer(rebasing: body[fixedSize..<fixedSize + topicLength])
        if let problem = Topic.validatePublishable(topic, maxLength: configuration.maxTopicLength),
            !(brokerTopics && problem == .reserved && Self.isBrokerServed(topic))
        {
            requestError(peer, problem.errorCode(isFilter: false), requestID: requestID,
                "\(type) topic '\(String(decoding: topic.prefix(128), as: UTF8.self))' \(problem)")
            return nil
        }
        guard !peer.pointee.drainingForShutdown else {
            requestError(peer, .brokerShuttingDown, requestID: requestID,
                "the broker is shutting down (it said GOODBYE); send the \(type) to the next one")
            return nil
        }
        return AddressedFrame(
            requestID: requestID, fixed: UnsafeRawBufferPointer(rebasing: body[..<fixedSize]), topic: topic,
            topicAndPayload: UnsafeRawBufferPointer(rebasing: body[fixedSize...]),
            payload: UnsafeRawBufferPointer(rebasing: body[(fixedSize + topicLength)...]))
    }
}
