/// Turns bytes into frames, checking every length and field.
public enum FrameDecoder {
    /// Checks a header as soon as its 8 bytes are in, before the body arrives, so an
    /// oversized or unknown frame is refused without buffering it.
    public static func validate(_ header: FrameHeader, maxFrameSize: Int) throws(FrameDecodingError) -> FrameType {
        guard let type = FrameType(rawValue: header.type) else { throw .unknownType(header.type) }
        // MESSAGE and RETAINED frames carry more than the PUBLISH they come from, so a
        // receiver allows for it.
        let allowance =
            switch type {
            case .message, .direct: ProtocolLimits.messageSenderBlockSize
            case .retained: ProtocolLimits.retainedPrefixSize
            case .call, .response: ProtocolLimits.callAllowance
            case .monitored: ProtocolLimits.monitoredAllowance
            default: 0
            }
        guard header.frameLength <= maxFrameSize + allowance else {
            throw .frameTooLarge(length: header.frameLength, maximum: maxFrameSize + allowance)
        }
        return type
    }

    /// Decodes the first frame in `bytes`. Returns nil when `bytes` does not hold a whole frame yet.
    public static func decode(
        _ bytes: UnsafeRawBufferPointer, maxFrameSize: Int = ProtocolLimits.maxFrameSizeCeiling
    ) throws(FrameDecodingError) -> (frame: Frame, length: Int)? {
        guard bytes.count >= FrameHeader.size else { return nil }
        let header = FrameHeader(loadingFrom: bytes.baseAddress!)
        let type = try validate(header, maxFrameSize: maxFrameSize)
        guard bytes.count >= header.frameLength else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.size..<header.frameLength])
        return (try decodeBody(type: type, header: header, body: body), header.frameLength)
    }

    /// Decodes the first frame in `bytes`; nil when incomplete.
    public static func decode(
        _ bytes: [UInt8], maxFrameSize: Int = ProtocolLimits.maxFrameSizeCeiling
    ) throws(FrameDecodingError) -> (frame: Frame, length: Int)? {
        do {
            return try bytes.withUnsafeBytes { raw in try decode(raw, maxFrameSize: maxFrameSize) }
        } catch let error as FrameDecodingError {
            throw error
        } catch {
            fatalError("unreachable: decode throws only FrameDecodingError")
        }
    }

    /// Decodes a body whose header has been validated.
    public static func decodeBody(
        type: FrameType, header: FrameHeader, body: UnsafeRawBufferPointer
    ) throws(FrameDecodingError) -> Frame {
        let allowedFlags: UInt8 =
            switch type {
            case .error: FrameFlags.fatal
            case .publish: FrameFlags.retain | FrameFlags.descriptors
            case .will: FrameFlags.retain
            case .subscribe: FrameFlags.responder | FrameFlags.monitor
            case .send, .reply, .message, .direct, .response, .monitored: FrameFlags.descriptors
            default: 0
            }
        guard header.flags & ~allowedFlags == 0 else { throw .unsupportedFlags(header.flags & ~allowedFlags) }
        if !type.carriesTopicLength && header.aux != 0 {
            throw .invalidValue("aux field must be zero for \(type)")
        }
        let passesDescriptors = header.flags & FrameFlags.descriptors != 0
        var body = body
        // A client frame's descriptor block comes in front of its usual body (§4.22).
        var clientDescriptors: DescriptorBlock?
        if passesDescriptors && (type == .publish || type == .send || type == .reply) {
            guard body.count >= DescriptorBlock.size else { throw .truncatedBody }
            clientDescriptors = try DescriptorBlock.loadClientBlock(from: body.baseAddress!).get()
            body = UnsafeRawBufferPointer(rebasing: body[DescriptorBlock.size...])
        }
        // A broker frame's is in its sender block (the first 24 body bytes).
        var brokerDescriptors: DescriptorBlock?
        if passesDescriptors && clientDescriptors == nil && body.count >= SenderBlock.size {
            brokerDescriptors = try DescriptorBlock.loadFromSenderBlock(body.baseAddress!).get()
        }
        var reader = ByteReader(body)
        let frame: Frame
        switch type {
        case .hello:
            guard try reader.u32() == ProtocolVersion.helloMagic else { throw .invalidValue("HELLO magic") }
            let minVersion = try reader.u16()
            let maxVersion = try reader.u16()
            let policyRaw = try reader.u8()
            let policy = SlowConsumerPolicy(rawValue: policyRaw)
            guard policy != nil || policyRaw == SlowConsumerPolicy.brokerDefaultWireValue else {
                throw .invalidValue("slow-consumer policy \(policyRaw)")
            }
            _ = try reader.u8()
            let nameLength = Int(try reader.u16())
            let outputLimit = try reader.u32()
            let capabilities = try reader.u32()
            guard nameLength <= ProtocolLimits.maxClientNameLength else { throw .lengthOutOfRange }
            guard nameLength == reader.remaining else { throw nameLength > reader.remaining ? .lengthOutOfRange : .trailingBytes }
            let name = try reader.utf8(nameLength)
            frame = .hello(
                Hello(
                    minVersion: minVersion, maxVersion: maxVersion, slowConsumerPolicy: policy,
                    outputLimit: outputLimit, capabilities: capabilities, clientName: name))
        case .welcome:
            let version = try reader.u16()
            let capabilities = try reader.u16()
            let peerID = try reader.u64()
            let credentials = PeerCredentials(pid: try reader.u32(), uid: try reader.u32(), gid: try reader.u32())
            let brokerPID = try reader.u32()
            let brokerUID = try reader.u32()
            let maxFrameSize = try reader.u32()
            let maxTopicLength = try reader.u32()
            let maxSubscriptions = try reader.u32()
            let outputLimit = try reader.u32()
            let policyRaw = try reader.u8()
            guard let policy = SlowConsumerPolicy(rawValue: policyRaw) else {
                throw .invalidValue("slow-consumer policy \(policyRaw)")
            }
            _ = try reader.u8()
            let nameLength = Int(try reader.u16())
            // Same limit as HELLO's client name; the encoder never writes more.
            guard nameLength <= ProtocolLimits.maxClientNameLength else { throw .lengthOutOfRange }
            guard nameLength == reader.remaining else { throw nameLength > reader.remaining ? .lengthOutOfRange : .trailingBytes }
            frame = .welcome(
                Welcome(
                    version: version, peerID: peerID, credentials: credentials, brokerPID: brokerPID,
                    brokerUID: brokerUID, maxFrameSize: maxFrameSize, maxTopicLength: maxTopicLength,
                    maxSubscriptions: maxSubscriptions, outputLimit: outputLimit, slowConsumerPolicy: policy,
                    serverName: try reader.utf8(nameLength), capabilities: capabilities))
        case .error:
            let code = try reader.u16()
            _ = try reader.u16()
            let requestID = try reader.u32()
            guard reader.remaining <= ProtocolLimits.maxErrorMessageLength else { throw .lengthOutOfRange }
            let message = try reader.utf8(reader.remaining)
            frame = .error(
                ErrorFrame(code: code, isFatal: header.flags & FrameFlags.fatal != 0, requestID: requestID, message: message))
        case .ping:
            frame = .ping(token: try reader.u64())
        case .pong:
            frame = .pong(token: try reader.u64())
        case .goodbye:
            let reason = try reader.u16()
            _ = try reader.u16()
            guard reader.remaining <= ProtocolLimits.maxErrorMessageLength else { throw .lengthOutOfRange }
            frame = .goodbye(Goodbye(reason: reason, message: try reader.utf8(reader.remaining)))
        case .ok:
            frame = .ok(requestID: try reader.u32())
        case .subscribe:
            let requestID = try reader.u32()
            let subscriptionID = try reader.u32()
            frame = .subscribe(
                Subscribe(
                    requestID: requestID, subscriptionID: subscriptionID, filter: try reader.utf8(reader.remaining),
                    responder: header.flags & FrameFlags.responder != 0, monitor: header.flags & FrameFlags.monitor != 0))
        case .unsubscribe:
            frame = .unsubscribe(Unsubscribe(requestID: try reader.u32(), subscriptionID: try reader.u32()))
        case .publish:
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            var publish = Publish(topic: topic, payload: reader.rest(), retain: header.flags & FrameFlags.retain != 0)
            publish.descriptors = clientDescriptors
            frame = .publish(publish)
        case .message, .direct:
            let sender = SenderBlock(loadingFrom: try reader.fixed(SenderBlock.size))
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            var delivery = Delivery(senderID: sender.senderID, sender: sender.credentials, topic: topic, payload: reader.rest())
            delivery.descriptors = brokerDescriptors
            frame = type == .direct ? .direct(delivery) : .message(delivery)
        case .dropped:
            frame = .dropped(DropNotice(messages: try reader.u64(), bytes: try reader.u64()))
        case .retained:
            let sender = SenderBlock(loadingFrom: try reader.fixed(SenderBlock.size))
            let subscriptionID = try reader.u32()
            _ = try reader.u32()
            let retainedAt = try reader.u64()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            frame = .retained(
                RetainedDelivery(
                    subscriptionID: subscriptionID, retainedAt: retainedAt, senderID: sender.senderID, sender: sender.credentials,
                    topic: topic, payload: reader.rest()))
        case .request:
            let requestID = try reader.u32()
            let timeout = try reader.u32()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            frame = .request(Request(requestID: requestID, timeoutMilliseconds: timeout, topic: topic, payload: reader.rest()))
        case .call:
            let sender = SenderBlock(loadingFrom: try reader.fixed(SenderBlock.size))
            let callID = try reader.u32()
            let subscriptionID = try reader.u32()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            frame = .call(
                Call(
                    senderID: sender.senderID, sender: sender.credentials, callID: callID, subscriptionID: subscriptionID,
                    topic: topic, payload: reader.rest()))
        case .reply:
            let callID = try reader.u32()
            let status = try reader.u32()
            var reply = Reply(callID: callID, status: status, payload: reader.rest())
            reply.descriptors = clientDescriptors
            frame = .reply(reply)
        case .send:
            let requestID = try reader.u32()
            _ = try reader.u32()
            let target = try reader.u64()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            var send = Send(requestID: requestID, target: target, topic: topic, payload: reader.rest())
            send.descriptors = clientDescriptors
            frame = .send(send)
        case .monitored:
            let sender = SenderBlock(loadingFrom: try reader.fixed(SenderBlock.size))
            let kindRaw = try reader.u8()
            guard let kind = Monitored.Kind(rawValue: kindRaw) else { throw .invalidValue("MONITORED kind \(kindRaw)") }
            _ = try reader.u8()
            _ = try reader.u16()
            let subscriptionID = try reader.u32()
            let target = try reader.u64()
            let callID = try reader.u32()
            let status = try reader.u32()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            var monitored = Monitored(
                senderID: sender.senderID, sender: sender.credentials, kind: kind, subscriptionID: subscriptionID, target: target,
                callID: callID, status: status, topic: topic, payload: reader.rest())
            monitored.descriptors = brokerDescriptors
            frame = .monitored(monitored)
        case .will:
            let requestID = try reader.u32()
            let topicLength = Int(header.aux)
            guard topicLength <= reader.remaining else { throw .lengthOutOfRange }
            let topic = try reader.bytes(topicLength)
            frame = .will(Will(requestID: requestID, topic: topic, payload: reader.rest(), retain: header.flags & FrameFlags.retain != 0))
        case .response:
            let sender = SenderBlock(loadingFrom: try reader.fixed(SenderBlock.size))
            let requestID = try reader.u32()
            let status = try reader.u32()
            var response = Response(
                senderID: sender.senderID, sender: sender.credentials, requestID: requestID, status: status, payload: reader.rest())
            response.descriptors = brokerDescriptors
            frame = .response(response)
        }
        try reader.expectEnd()
        return frame
    }
}
