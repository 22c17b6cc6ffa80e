import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Passing open file descriptors with a message (PROTOCOL.md §4.22): a pipe or a socket
/// handed to another service, a memfd with an image, a file opened on someone's behalf.
///
/// The bus sends its own duplicates (made when the call is made, so the caller keeps and
/// closes its descriptors as it likes); every receiver gets descriptors of its own,
/// installed by the kernel, for the same open files.
extension Bus {
    /// The most descriptors one message may pass (PROTOCOL.md §4.22).
    public static let maxFileDescriptorsPerMessage = ProtocolLimits.maxDescriptorsPerMessage

    /// Publishes `payload` on `topic` together with `fileDescriptors` (1 to
    /// ``maxFileDescriptorsPerMessage``).
    ///
    /// Subscribers that accept descriptors (``BusOptions/acceptsFileDescriptors``) receive
    /// their own copies in ``Message/fileDescriptors``; the others receive the message with
    /// ``Message/withheldFileDescriptors`` saying how many they did not get. A message with
    /// descriptors cannot be retained. Without descriptors this is ``publish(_:_:retain:)``.
    ///
    /// - Throws: ``HeraldError/descriptorsRefused(_:)`` if the broker does not support
    ///   descriptors, there are too many, or one cannot be duplicated (not open); the broker
    ///   refusing them (the user's quota) is reported by ``flush()``. Otherwise as
    ///   ``publish(_:_:retain:)``, and ``HeraldError/connectionLost(_:)`` while reconnecting
    ///   (descriptors are not buffered for a broker that is not there).
    nonisolated(nonsending) public func publish(
        _ topic: String, _ payload: some Collection<UInt8>, fileDescriptors: [FileDescriptor]
    ) async throws(HeraldError) {
        guard !fileDescriptors.isEmpty else { return try await publish(topic, payload) }
        try requireDescriptorPassing(count: fileDescriptors.count)
        let topicBytes = try validatedTopic(topic)
        var publish = Publish(topic: topicBytes, payload: Array(payload))
        publish.descriptors = DescriptorBlock(count: UInt8(fileDescriptors.count))
        try await enqueue(.publish(publish), passing: try duplicate(fileDescriptors))
    }

    /// Publishes a payload written in place in shared memory (see ``SealedPayload``), and
    /// `fileDescriptors` besides (at most ``maxFileDescriptorsPerMessage`` − 1).
    ///
    /// Subscribers read the payload in place from the same pages (``Message/withPayloadBytes(_:)``);
    /// one that does not accept descriptors receives the message without it, flagged
    /// (``Message/payloadRejection``).
    ///
    /// - Throws: as ``publish(_:_:fileDescriptors:)``.
    nonisolated(nonsending) public func publish(
        _ topic: String, _ payload: consuming SealedPayload, fileDescriptors: [FileDescriptor] = []
    ) async throws(HeraldError) {
        try requireDescriptorPassing(count: fileDescriptors.count + 1)
        let topicBytes = try validatedTopic(topic)
        let extra = try duplicate(fileDescriptors)
        let memfd: Int32
        do { memfd = try payload.sealedDescriptor() } catch {
            Bus.closeAll(extra)
            throw error
        }
        var publish = Publish(topic: topicBytes, payload: [])
        publish.descriptors = DescriptorBlock(count: UInt8(extra.count + 1), sealedPayload: true)
        try await enqueue(.publish(publish), passing: [memfd] + extra)
    }

    /// Sends a direct message (``send(to:_:_:)``) together with `fileDescriptors`.
    ///
    /// - Throws: as ``send(to:_:_:)`` and ``publish(_:_:fileDescriptors:)``; ``flush()``
    ///   throws ``HeraldError/descriptorsRefused(_:)`` if the receiver does not accept descriptors.
    nonisolated(nonsending) public func send(
        to peerID: UInt64, _ topic: String, _ payload: some Collection<UInt8>, fileDescriptors: [FileDescriptor]
    ) async throws(HeraldError) {
        guard !fileDescriptors.isEmpty else { return try await send(to: peerID, topic, payload) }
        try requireDirectMessages()
        try requireDescriptorPassing(count: fileDescriptors.count)
        let topicBytes = try validatedTopic(topic)
        let requestID = connection.control.withLock { $0.takeRequestID() }
        var send = Send(requestID: requestID, target: peerID, topic: topicBytes, payload: Array(payload))
        send.descriptors = DescriptorBlock(count: UInt8(fileDescriptors.count))
        try await enqueue(.send(send), passing: try duplicate(fileDescriptors))
    }

    /// One attempt to publish a payload over ``sealedPayloadThreshold`` as a sealed memfd
    /// holding a copy of it (no wait: `.full` if the outgoing buffer has no room).
    func attemptSealedPublish(_ topic: String, _ payload: UnsafeRawBufferPointer) -> PublishAttempt {
        let topicBytes: [UInt8]
        do { topicBytes = try validatedTopic(topic) } catch { return .failed(error) }
        var publish = Publish(topic: topicBytes, payload: [])
        publish.descriptors = DescriptorBlock(count: 1, sealedPayload: true)
        let frame = FrameEncoder.encode(.publish(publish))
        // Checked first so a full buffer does not cost a copy of the payload to throw away.
        guard connection.hasRoom(forFrameOf: frame.count, passing: 1) else { return .full }
        let memfd = herald_sealed_memfd("herald-payload", payload.baseAddress, payload.count)
        guard memfd >= 0 else {
            return .failed(.descriptorsRefused("cannot create a sealed memfd for a payload of \(payload.count) bytes: "
                + systemErrorDescription(herald_errno())))
        }
        let attempt = connection.enqueue(frame, passing: [memfd])
        if case .queued = attempt {} else { Glibc.close(memfd) }
        return attempt
    }

    /// Throws unless this bus may pass `count` descriptors with one message.
    func requireDescriptorPassing(count: Int) throws(HeraldError) {
        guard UInt32(welcome.capabilities) & Capabilities.descriptors != 0 else {
            throw .descriptorsRefused(
                options.acceptsFileDescriptors
                    ? "this broker does not support passing file descriptors (it did not confirm the 'fds' capability)"
                    : "this bus was created without BusOptions.acceptsFileDescriptors")
        }
        guard count <= Bus.maxFileDescriptorsPerMessage else {
            throw .descriptorsRefused("\(count) descriptors in one message; at most \(Bus.maxFileDescriptorsPerMessage) may be passed")
        }
    }

    /// This process's own close-on-exec duplicates of `descriptors`, to send and close.
    func duplicate(_ descriptors: [FileDescriptor]) throws(HeraldError) -> [Int32] {
        var copies: [Int32] = []
        for descriptor in descriptors {
            let copy = fcntl(descriptor.rawValue, F_DUPFD_CLOEXEC, 0)
            guard copy >= 0 else {
                let reason = systemErrorDescription(herald_errno())
                Bus.closeAll(copies)
                throw .descriptorsRefused("cannot duplicate descriptor \(descriptor.rawValue): \(reason)")
            }
            copies.append(copy)
        }
        return copies
    }

    /// Queues `frame` with `descriptors` (owned: sent, or closed if the frame is refused),
    /// waiting while the outgoing buffer is full.
    nonisolated(nonsending) func enqueue(_ frame: Frame, passing descriptors: [Int32]) async throws(HeraldError) {
        let encoded = FrameEncoder.encode(frame)
        guard encoded.count <= broker.maxFrameSize else {
            Bus.closeAll(descriptors)
            throw .messageTooLarge(size: encoded.count, maximum: broker.maxFrameSize)
        }
        while true {
            switch connection.enqueue(encoded, passing: descriptors) {
            case .queued:
                return
            case .failed(let error):
                Bus.closeAll(descriptors)
                throw error
            case .full:
                await waitForPublishSpace()
            }
        }
    }

    static func closeAll(_ descriptors: [Int32]) {
        for descriptor in descriptors { _ = Glibc.close(descriptor) }
    }
}

extension IncomingRequest {
    /// Sends `payload` as the answer together with `fileDescriptors` (see
    /// ``Bus/publish(_:_:fileDescriptors:)``). A requester that does not accept descriptors
    /// receives the answer with ``Message/withheldFileDescriptors`` set.
    ///
    /// - Throws: as ``respond(_:)`` and ``Bus/publish(_:_:fileDescriptors:)``.
    nonisolated(nonsending) public func respond(_ payload: some Collection<UInt8>, fileDescriptors: [FileDescriptor]) async throws(HeraldError) {
        guard !fileDescriptors.isEmpty else { return try await respond(payload) }
        try bus.requireDescriptorPassing(count: fileDescriptors.count)
        var reply = Reply(callID: callID, status: 0, payload: Array(payload))
        reply.descriptors = DescriptorBlock(count: UInt8(fileDescriptors.count))
        try await bus.enqueue(.reply(reply), passing: try bus.duplicate(fileDescriptors))
    }
}
