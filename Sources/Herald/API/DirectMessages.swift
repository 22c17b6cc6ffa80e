import HeraldProtocol

extension Bus {
    /// Sends a message to one peer, named by its peer id, on `topic` (what the message is
    /// about; no subscription is involved).
    ///
    /// The relay-by-client-id pattern: a service learns a client's peer id from a message or
    /// request it sent (``Message/Sender/peerID``) and writes back to it alone. The receiver
    /// gets it through ``directMessages()``, stamped with this bus's identity, and must have
    /// been created with ``BusOptions/acceptsDirectMessages``. The broker checks the topic
    /// and its policy as for a publish (this bus may publish on the topic, the receiver may
    /// receive it).
    ///
    /// Returns once the message is buffered, like ``publish(_:_:retain:)``; ``flush()``
    /// throws ``HeraldError/unknownPeer(_:)`` if no such peer is connected and
    /// ``HeraldError/directNotAccepted(_:)`` if it does not take direct messages.
    ///
    /// - Throws: ``HeraldError/invalidTopic(_:reason:)`` or
    ///   ``HeraldError/messageTooLarge(size:maximum:)`` before anything is sent;
    ///   ``HeraldError/closed`` or the reason the connection ended.
    nonisolated(nonsending) public func send(to peerID: UInt64, _ topic: String, _ payload: some Collection<UInt8>) async throws(HeraldError) {
        try requireDirectMessages()
        let topicBytes = try validatedTopic(topic)
        let bytes = Array(payload)
        let size = FrameHeader.size + 16 + topicBytes.count + bytes.count
        guard size <= broker.maxFrameSize else { throw .messageTooLarge(size: size, maximum: broker.maxFrameSize) }
        let requestID = connection.control.withLock { $0.takeRequestID() }
        let frame = FrameEncoder.encode(.send(Send(requestID: requestID, target: peerID, topic: topicBytes, payload: bytes)))
        if let rejection = connection.enqueue(frame) { throw rejection }
    }

    /// Throws unless the broker confirmed `direct`: one that did not does not know SEND, and
    /// would close the connection.
    func requireDirectMessages() throws(HeraldError) {
        guard UInt32(welcome.capabilities) & Capabilities.direct != 0 else {
            throw .brokerError(code: ErrorCode.unexpectedFrame.rawValue,
                message: "this broker does not support direct messages (it did not confirm the 'direct' capability)")
        }
    }

    /// Sends the UTF-8 of `text` to one peer; see the byte-payload `send(to:_:_:)`.
    nonisolated(nonsending) public func send(to peerID: UInt64, _ topic: String, _ text: String) async throws(HeraldError) {
        try await send(to: peerID, topic, Array(text.utf8))
    }

    /// The messages other peers sent this bus by its peer id (``send(to:_:_:)``), in the
    /// order the broker delivered them, each with its sender.
    ///
    /// Needs ``BusOptions/acceptsDirectMessages``; messages that arrive before this is called
    /// are kept (within ``BusOptions/subscriptionBufferLimit``, as for a subscription). Meant
    /// for one consumer: call it once and iterate the result; cancelling it ends the inbox.
    ///
    /// - Throws: ``HeraldError/directNotAccepted(_:)`` if the bus does not accept direct
    ///   messages, or the broker does not support them.
    public func directMessages() throws(HeraldError) -> Subscription {
        guard let inbox = connection.directInbox, UInt32(welcome.capabilities) & Capabilities.directInbox != 0 else {
            throw .directNotAccepted(
                options.acceptsDirectMessages
                    ? "this broker does not support direct messages"
                    : "this bus was created without BusOptions.acceptsDirectMessages")
        }
        return Subscription(bus: self, state: inbox)
    }
}
