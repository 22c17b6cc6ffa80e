/// Turns frames into bytes. Used off the broker's hot path (which writes MESSAGE headers
/// in place) and by clients for everything they send.
public enum FrameEncoder {
    /// Appends the encoding of `frame` to `buffer`.
    public static func encode(_ frame: Frame, into buffer: inout [UInt8]) {
        let start = buffer.count
        // Header placeholder; the body length is patched in once the body is written.
        buffer.append(contentsOf: repeatElement(0, count: FrameHeader.size))
        var flags: UInt8 = 0
        var aux: UInt16 = 0
        switch frame {
        case .hello(let hello):
            let name = truncatedUTF8(hello.clientName, to: ProtocolLimits.maxClientNameLength)
            buffer.appendLE(ProtocolVersion.helloMagic)
            buffer.appendLE(hello.minVersion)
            buffer.appendLE(hello.maxVersion)
            buffer.append(hello.slowConsumerPolicy?.rawValue ?? SlowConsumerPolicy.brokerDefaultWireValue)
            buffer.append(0)
            buffer.appendLE(UInt16(name.count))
            buffer.appendLE(hello.outputLimit)
            buffer.appendLE(hello.capabilities)
            buffer.append(contentsOf: name)
        case .welcome(let welcome):
            let name = truncatedUTF8(welcome.serverName, to: ProtocolLimits.maxClientNameLength)
            buffer.appendLE(welcome.version)
            buffer.appendLE(welcome.capabilities)
            buffer.appendLE(welcome.peerID)
            buffer.appendLE(welcome.credentials.pid)
            buffer.appendLE(welcome.credentials.uid)
            buffer.appendLE(welcome.credentials.gid)
            buffer.appendLE(welcome.brokerPID)
            buffer.appendLE(welcome.brokerUID)
            buffer.appendLE(welcome.maxFrameSize)
            buffer.appendLE(welcome.maxTopicLength)
            buffer.appendLE(welcome.maxSubscriptions)
            buffer.appendLE(welcome.outputLimit)
            buffer.append(welcome.slowConsumerPolicy.rawValue)
            buffer.append(0)
            buffer.appendLE(UInt16(name.count))
            buffer.append(contentsOf: name)
        case .error(let error):
            flags = error.isFatal ? FrameFlags.fatal : 0
            buffer.appendLE(error.code)
            buffer.appendLE(UInt16(0))
            buffer.appendLE(error.requestID)
            buffer.append(contentsOf: truncatedUTF8(error.message, to: ProtocolLimits.maxErrorMessageLength))
        case .ping(let token), .pong(let token):
            buffer.appendLE(token)
        case .goodbye(let goodbye):
            buffer.appendLE(goodbye.reason)
            buffer.appendLE(UInt16(0))
            buffer.append(contentsOf: truncatedUTF8(goodbye.message, to: ProtocolLimits.maxErrorMessageLength))
        case .ok(let requestID):
            buffer.appendLE(requestID)
        case .subscribe(let subscribe):
            flags = (subscribe.responder ? FrameFlags.responder : 0) | (subscribe.monitor ? FrameFlags.monitor : 0)
            buffer.appendLE(subscribe.requestID)
            buffer.appendLE(subscribe.subscriptionID)
            buffer.append(contentsOf: subscribe.filter.utf8)
        case .unsubscribe(let unsubscribe):
            buffer.appendLE(unsubscribe.requestID)
            buffer.appendLE(unsubscribe.subscriptionID)
        case .publish(let publish):
            aux = UInt16(truncatingIfNeeded: publish.topic.count)
            flags = publish.retain ? FrameFlags.retain : 0
            flags |= appendClientDescriptorBlock(publish.descriptors, to: &buffer)
            buffer.append(contentsOf: publish.topic)
            buffer.append(contentsOf: publish.payload)
        case .message(let delivery), .direct(let delivery):
            aux = UInt16(truncatingIfNeeded: delivery.topic.count)
            appendSenderBlock(SenderBlock(senderID: delivery.senderID, credentials: delivery.sender), delivery.descriptors, to: &buffer)
            flags = delivery.descriptors == nil ? 0 : FrameFlags.descriptors
            buffer.append(contentsOf: delivery.topic)
            buffer.append(contentsOf: delivery.payload)
        case .dropped(let notice):
            buffer.appendLE(notice.messages)
            buffer.appendLE(notice.bytes)
        case .retained(let retained):
            aux = UInt16(truncatingIfNeeded: retained.topic.count)
            appendSenderBlock(SenderBlock(senderID: retained.senderID, credentials: retained.sender), to: &buffer)
            buffer.appendLE(retained.subscriptionID)
            buffer.appendLE(UInt32(0))
            buffer.appendLE(retained.retainedAt)
            buffer.append(contentsOf: retained.topic)
            buffer.append(contentsOf: retained.payload)
        case .request(let request):
            aux = UInt16(truncatingIfNeeded: request.topic.count)
            buffer.appendLE(request.requestID)
            buffer.appendLE(request.timeoutMilliseconds)
            buffer.append(contentsOf: request.topic)
            buffer.append(contentsOf: request.payload)
        case .call(let call):
            aux = UInt16(truncatingIfNeeded: call.topic.count)
            appendSenderBlock(SenderBlock(senderID: call.senderID, credentials: call.sender), to: &buffer)
            buffer.appendLE(call.callID)
            buffer.appendLE(call.subscriptionID)
            buffer.append(contentsOf: call.topic)
            buffer.append(contentsOf: call.payload)
        case .reply(let reply):
            flags = appendClientDescriptorBlock(reply.descriptors, to: &buffer)
            buffer.appendLE(reply.callID)
            buffer.appendLE(reply.status)
            buffer.append(contentsOf: reply.payload)
        case .send(let send):
            aux = UInt16(truncatingIfNeeded: send.topic.count)
            flags = appendClientDescriptorBlock(send.descriptors, to: &buffer)
            buffer.appendLE(send.requestID)
            buffer.appendLE(UInt32(0))
            buffer.appendLE(send.target)
            buffer.append(contentsOf: send.topic)
            buffer.append(contentsOf: send.payload)
        case .will(let will):
            aux = UInt16(truncatingIfNeeded: will.topic.count)
            flags = will.retain ? FrameFlags.retain : 0
            buffer.appendLE(will.requestID)
            buffer.append(contentsOf: will.topic)
            buffer.append(contentsOf: will.payload)
        case .monitored(let monitored):
            aux = UInt16(truncatingIfNeeded: monitored.topic.count)
            appendSenderBlock(SenderBlock(senderID: monitored.senderID, credentials: monitored.sender), monitored.descriptors, to: &buffer)
            flags = monitored.descriptors == nil ? 0 : FrameFlags.descriptors
            buffer.append(monitored.kind.rawValue)
            buffer.append(contentsOf: [0, 0, 0])
            buffer.appendLE(monitored.subscriptionID)
            buffer.appendLE(monitored.target)
            buffer.appendLE(monitored.callID)
            buffer.appendLE(monitored.status)
            buffer.append(contentsOf: monitored.topic)
            buffer.append(contentsOf: monitored.payload)
        case .response(let response):
            appendSenderBlock(SenderBlock(senderID: response.senderID, credentials: response.sender), response.descriptors, to: &buffer)
            flags = response.descriptors == nil ? 0 : FrameFlags.descriptors
            buffer.appendLE(response.requestID)
            buffer.appendLE(response.status)
            buffer.append(contentsOf: response.payload)
        }
        let header = FrameHeader(
            bodyLength: UInt32(buffer.count - start - FrameHeader.size), type: frame.type.rawValue, flags: flags,
            aux: aux)
        buffer.withUnsafeMutableBytes { header.store(to: $0.baseAddress! + start) }
    }

    /// The encoding of `frame` as a new array.
    public static func encode(_ frame: Frame) -> [UInt8] {
        var buffer: [UInt8] = []
        encode(frame, into: &buffer)
        return buffer
    }

    /// Appends a PUBLISH frame for pre-validated `topic` bytes and `payload` without building
    /// a ``Frame`` (the client's fast path).
    @inlinable
    public static func appendPublish(
        topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, into buffer: inout [UInt8]
    ) {
        let header = FrameHeader(
            bodyLength: UInt32(topic.count + payload.count), type: FrameType.publish.rawValue,
            aux: UInt16(truncatingIfNeeded: topic.count))
        withUnsafeBytes(of: header.bodyLength.littleEndian) { buffer.append(contentsOf: $0) }
        buffer.append(header.type)
        buffer.append(header.flags)
        withUnsafeBytes(of: header.aux.littleEndian) { buffer.append(contentsOf: $0) }
        buffer.append(contentsOf: topic)
        buffer.append(contentsOf: payload)
    }

    /// Appends the 24-byte sender block of MESSAGE, RETAINED, CALL and RESPONSE.
    private static func appendSenderBlock(_ block: SenderBlock, _ descriptors: DescriptorBlock? = nil, to buffer: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: SenderBlock.size, alignment: 8) { raw in
            block.store(to: raw.baseAddress!)
            descriptors?.store(intoSenderBlock: raw.baseAddress!)
            buffer.append(contentsOf: raw)
        }
    }

    /// Appends a client frame's descriptor block, if any; returns the flag it needs.
    private static func appendClientDescriptorBlock(_ descriptors: DescriptorBlock?, to buffer: inout [UInt8]) -> UInt8 {
        guard let descriptors else { return 0 }
        buffer.append(descriptors.count)
        buffer.append(descriptors.flags)
        buffer.appendLE(UInt16(0))
        return FrameFlags.descriptors
    }

    /// The UTF-8 of `text`, cut at a character boundary to at most `limit` bytes.
    static func truncatedUTF8(_ text: String, to limit: Int) -> [UInt8] {
        let bytes = Array(text.utf8)
        if bytes.count <= limit { return bytes }
        var end = limit
        // Back up over continuation bytes (10xxxxxx) so no scalar is split.
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return Array(bytes[..<end])
    }
}
