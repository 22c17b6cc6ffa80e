import HeraldProtocol
import Logging

/// File descriptors passed with PUBLISH, SEND and REPLY (PROTOCOL.md §4.22). Off the hot
/// path: a frame without the `fds` flag never reaches this file, and the routing loop is
/// the same for frames with descriptors (they are marked on their receivers' queues after
/// it ran).
///
/// Inbound, the server hands over the descriptors each `recvmsg` brought, and each frame
/// with the flag takes its count from the front of the peer's queue of them. Outbound, a
/// frame queued for a receiver that announced `fds` gets an entry in the receiver's
/// ``Peer/passing`` list, and the server sends the descriptors with that frame's first byte.
/// The broker holds one descriptor per passed file however many receive it
/// (``DescriptorSet``), charged to the sender's uid until the last receiver's copy is written.
extension BrokerCore {

    // MARK: - The server's interface

    /// Whether descriptors may come from the peer in `slot`: it announced `fds` and is
    /// welcomed. The server reads the others' sockets without room for control messages, so
    /// descriptors they send are closed by the kernel, which reports that (MSG_CTRUNC).
    public func acceptsDescriptors(_ slot: PeerSlot) -> Bool {
        guard let peer = peers[slot] else { return false }
        return peer.pointee.state == .active && peer.pointee.capabilities & Capabilities.descriptors != 0
    }

    /// Bytes read from the peer in `slot` at `now` together with the descriptors the same
    /// `recvmsg` brought. The core owns the descriptors from here on: it closes them if the
    /// peer may not pass any or when nothing takes them.
    public func receive(_ slot: PeerSlot, _ bytes: UnsafeRawBufferPointer, descriptors: UnsafeBufferPointer<Int32>, now: Double) {
        guard let peer = peers[slot] else {
            for descriptor in descriptors { closeDescriptor(descriptor) }
            return
        }
        if !descriptors.isEmpty {
            statistics.descriptorsReceived &+= UInt64(descriptors.count)
            guard peer.pointee.isOpen, peer.pointee.state == .active, peer.pointee.capabilities & Capabilities.descriptors != 0 else {
                for descriptor in descriptors { closeDescriptor(descriptor) }
                fail(peer, .unexpectedDescriptors,
                    "\(descriptors.count) file descriptors arrived, but this connection did not announce the fds capability; they were closed")
                return
            }
            peer.pointee.receivedDescriptors.append(contentsOf: descriptors)
        }
        receive(peer, bytes, now: now)
        checkLeftoverDescriptors(peer)
    }

    /// The peer in `slot` sent descriptors that were lost on the way in: it did not announce
    /// `fds` (its socket is read without room for them), or the broker could not take them
    /// (out of descriptors). Either way its frames and descriptors no longer line up.
    public func descriptorsLost(_ slot: PeerSlot) {
        guard let peer = peers[slot] else { return }
        if peer.pointee.state == .active && peer.pointee.capabilities & Capabilities.descriptors != 0 {
            logger.warning("could not receive the file descriptors a peer passed (the broker may be out of descriptors)",
                metadata: peerMetadata(peer, [:]))
            fail(peer, .descriptorCountMismatch,
                "the broker could not receive the file descriptors passed with a frame (it may be out of descriptors)")
        } else {
            fail(peer, .unexpectedDescriptors,
                "file descriptors arrived, but this connection did not announce the fds capability; the kernel closed them")
        }
    }

    /// What the server sends next with descriptors for the peer in `slot`, or nil if no
    /// frame in its pending output carries any (the server then writes as usual).
    public func nextDescriptorPass(of slot: PeerSlot) -> DescriptorPass? {
        guard let peer = peers[slot], let first = peer.pointee.passing.first else { return nil }
        let consumed = peer.pointee.outputConsumed
        let next = peer.pointee.passing.count > 1 ? peer.pointee.passing[1].position - first.position : nil
        return DescriptorPass(offset: first.position - consumed, descriptors: first.set.descriptors, bytesUntilNextPass: next)
    }

    /// The server sent the descriptors of ``nextDescriptorPass(of:)`` (with at least the
    /// frame's first byte); the broker's copies are closed once no other receiver needs them.
    public func descriptorsPassed(of slot: PeerSlot) {
        guard let peer = peers[slot], !peer.pointee.passing.isEmpty else { return }
        let pass = peer.pointee.passing.removeFirst()
        statistics.descriptorsPassed &+= UInt64(pass.set.count)
        release(pass.set)
    }

    /// Whether the broker holds no passed descriptor and no peer has any waiting (for tests).
    public var holdsNoDescriptors: Bool {
        statistics.descriptorsHeld == 0 && descriptorsHeldByUID.isEmpty
            && peers.snapshot().allSatisfy { $0.pointee.passing.isEmpty && $0.pointee.receivedDescriptors.isEmpty }
    }

    // MARK: - Taking a frame's descriptors

    /// A PUBLISH, SEND or REPLY with the `fds` flag from `peer`: takes its descriptors, then
    /// handles the frame without its descriptor block, with the descriptors attached to what
    /// it delivers. Checks in the order of PROTOCOL.md §3.5: the capability (non-fatal
    /// `unsupported_flags`), the block (fatal `malformed_frame`), the descriptors received
    /// (fatal `fd_count_mismatch`), the per-message maximum (`too_many_fds`) and the quotas
    /// (`fd_quota_exceeded`); the descriptors of a refused frame are closed.
    func handleWithDescriptors(
        _ peer: PeerPointer, _ type: FrameType, _ header: FrameHeader, _ body: UnsafeRawBufferPointer,
        _ handle: (FrameHeader, UnsafeRawBufferPointer) -> Void
    ) {
        // The request id an ERROR names: PUBLISH's ordinal, or the first field after the block.
        let requestID =
            type == .publish
            ? peer.pointee.publishOrdinal
            : body.count >= DescriptorBlock.size + 4 ? UInt32(littleEndian: body.loadUnaligned(fromByteOffset: DescriptorBlock.size, as: UInt32.self)) : 0
        guard peer.pointee.capabilities & Capabilities.descriptors != 0 else {
            requestError(peer, .unsupportedFlags, requestID: requestID,
                "\(type) flag 0x80 (fds) needs the fds capability, which this connection did not announce; frame ignored")
            return
        }
        guard body.count >= DescriptorBlock.size else {
            fail(peer, .malformedFrame, "\(type) with the fds flag has a body of \(body.count) bytes, shorter than its 4-byte descriptor block")
            return
        }
        let block: DescriptorBlock
        switch DescriptorBlock.loadClientBlock(from: body.baseAddress!) {
        case .success(let decoded): block = decoded
        case .failure(let error):
            fail(peer, .malformedFrame, "\(type): \(error)")
            return
        }
        let count = Int(block.count)
        guard peer.pointee.receivedDescriptors.count >= count else {
            fail(peer, .descriptorCountMismatch,
                "\(type) announces \(count) file descriptors but \(peer.pointee.receivedDescriptors.count) arrived with it")
            return
        }
        let taken = Array(peer.pointee.receivedDescriptors.prefix(count))
        peer.pointee.receivedDescriptors.removeFirst(count)
        guard count <= ProtocolLimits.maxDescriptorsPerMessage else {
            refuseDescriptors(taken, peer, .tooManyDescriptors, requestID: requestID,
                "\(type) carries \(count) file descriptors; at most \(ProtocolLimits.maxDescriptorsPerMessage) may go with one message")
            return
        }
        let uid = peer.pointee.credentials.uid
        let heldByUID = descriptorsHeldByUID[uid, default: 0]
        guard heldByUID + count <= configuration.maxDescriptorsPerUID else {
            refuseDescriptors(taken, peer, .descriptorQuotaExceeded, requestID: requestID,
                "uid \(uid) already has \(heldByUID) file descriptors held by the broker for their receivers; its maximum is \(configuration.maxDescriptorsPerUID)")
            return
        }
        guard statistics.descriptorsHeld + count <= configuration.maxDescriptorsHeld else {
            refuseDescriptors(taken, peer, .descriptorQuotaExceeded, requestID: requestID,
                "the broker holds \(statistics.descriptorsHeld) passed file descriptors, its maximum of \(configuration.maxDescriptorsHeld) with these")
            return
        }
        descriptorsHeldByUID[uid] = heldByUID + count
        statistics.descriptorsHeld += count
        let set = DescriptorSet(descriptors: taken, uid: uid, sealedPayload: block.sealedPayload)
        // The frame without its block: a new header where the block ended, the body after it.
        let stripped = FrameHeader(
            bodyLength: header.bodyLength - UInt32(DescriptorBlock.size), type: header.type,
            flags: header.flags & ~FrameFlags.descriptors, aux: header.aux)
        attaching = set
        handle(stripped, UnsafeRawBufferPointer(rebasing: body[DescriptorBlock.size...]))
        attaching = nil
        // The frame's own hold: what no receiver took is closed now.
        release(set)
    }

    /// Closes descriptors taken for a frame that is refused, and tells the peer why.
    private func refuseDescriptors(_ descriptors: [Int32], _ peer: PeerPointer, _ code: ErrorCode, requestID: UInt32, _ message: String) {
        for descriptor in descriptors { closeDescriptor(descriptor) }
        statistics.descriptorRefusals &+= 1
        requestError(peer, code, requestID: requestID, message + "; the descriptors were closed and nothing was delivered")
    }

    /// A SEND or REPLY with descriptors for `target`: false (after refusing the frame) if the
    /// target cannot receive descriptors.
    func targetAcceptsAttachment(_ target: PeerPointer, from peer: PeerPointer, _ type: FrameType, requestID: UInt32) -> Bool {
        guard let set = attaching, target.pointee.capabilities & Capabilities.descriptors == 0 else { return true }
        statistics.descriptorRefusals &+= 1
        requestError(peer, .descriptorsNotAccepted, requestID: requestID,
            "peer \(target.pointee.id) (\(target.pointee.name)) does not accept file descriptors (no fds capability); the \(type) with \(set.count) was not delivered")
        return false
    }

    // MARK: - Attaching to receivers' frames

    /// Marks the frame of `length` bytes just queued at the end of `receiver`'s output as
    /// carrying the descriptors being handled: sets its `fds` flag and the descriptor fields
    /// of its sender block, and queues the descriptors to go with its first byte, or, for a
    /// receiver without `fds` (or a monitor), says they were withheld.
    func attachDescriptors(toFrameOf length: Int, queuedFor receiver: PeerPointer) {
        guard let set = attaching else { return }
        let frame = peerOutputEnd(receiver) - length
        let pointer = receiver.pointee.output.readPointer + (frame - receiver.pointee.outputConsumed)
        let mutable = UnsafeMutableRawPointer(mutating: pointer)
        mutable.storeBytes(of: pointer.load(fromByteOffset: 5, as: UInt8.self) | FrameFlags.descriptors, toByteOffset: 5, as: UInt8.self)
        let count = UInt8(set.count)
        if receiver.pointee.capabilities & Capabilities.descriptors != 0 {
            DescriptorBlock(count: count, sealedPayload: set.sealedPayload).store(intoSenderBlock: mutable + FrameHeader.size)
            set.holders += 1
            receiver.pointee.passing.append(PendingDescriptorPass(position: frame, set: set))
        } else {
            DescriptorBlock(count: 0, withheld: count, sealedPayload: set.sealedPayload).store(intoSenderBlock: mutable + FrameHeader.size)
            statistics.descriptorsWithheld &+= UInt64(count)
        }
    }

    /// The descriptor fields a monitor's copy of the frame being handled carries: all withheld.
    var withheldForMonitors: DescriptorBlock? {
        attaching.map { DescriptorBlock(count: 0, withheld: UInt8($0.count), sealedPayload: $0.sealedPayload) }
    }

    /// Where `peer`'s queued output ends, in stream bytes.
    func peerOutputEnd(_ peer: PeerPointer) -> Int { peer.pointee.outputConsumed + peer.pointee.output.count }

    /// Routes a PUBLISH (its descriptor block already stripped) and attaches the descriptors
    /// being handled to each MESSAGE queued: the routing loop is the hot path's own, and the
    /// frames it queued are found at the end of each receiver's output.
    func deliverWithDescriptors(_ publisher: PeerPointer, _ frame: UnsafeRawPointer, _ header: FrameHeader) {
        let routeCount = publisher.pointee.route.count
        descriptorRouteEnds.removeAll(keepingCapacity: true)
        for position in 0..<routeCount { descriptorRouteEnds.append(peerOutputEnd(publisher.pointee.route.base![position])) }
        deliver(publisher, frame, header)
        let length = FrameHeader.size + SenderBlock.size + Int(header.bodyLength)
        for position in 0..<min(routeCount, publisher.pointee.route.count) {
            let subscriber = publisher.pointee.route.base![position]
            // Queued if its output grew by the delivery (a drop or a disconnect queues nothing after it).
            if subscriber.pointee.isOpen && peerOutputEnd(subscriber) >= descriptorRouteEnds[position] + length {
                attachDescriptors(toFrameOf: length, queuedFor: subscriber)
            }
        }
    }

    // MARK: - Releasing

    /// Drops one hold on `set`; the last closes the broker's descriptors and gives the
    /// sender's uid its quota back.
    func release(_ set: DescriptorSet) {
        set.holders -= 1
        guard set.holders == 0 else { return }
        for descriptor in set.descriptors { closeDescriptor(descriptor) }
        statistics.descriptorsHeld -= set.count
        let left = descriptorsHeldByUID[set.uid, default: 0] - set.count
        descriptorsHeldByUID[set.uid] = left > 0 ? left : nil
    }

    /// Output up to stream position `end` was written without ``descriptorsPassed(of:)``
    /// (the in-memory driver, which has no socket): those frames' descriptors are not sent.
    func releasePassesWritten(of peer: PeerPointer, upTo end: Int) {
        while let first = peer.pointee.passing.first, first.position < end {
            peer.pointee.passing.removeFirst()
            release(first.set)
        }
    }

    /// Output was cut (slow consumer, closing): the frames cut off no longer need their descriptors.
    func releasePassesCut(of peer: PeerPointer) {
        let end = peerOutputEnd(peer)
        while let last = peer.pointee.passing.last, last.position >= end {
            peer.pointee.passing.removeLast()
            release(last.set)
        }
    }

    /// `peer` is gone: descriptors waiting to be sent to it or taken by its frames are released.
    func releaseDescriptors(of peer: PeerPointer) {
        for pass in peer.pointee.passing { release(pass.set) }
        peer.pointee.passing.removeAll()
        for descriptor in peer.pointee.receivedDescriptors { closeDescriptor(descriptor) }
        peer.pointee.receivedDescriptors.removeAll()
    }

    /// After a read: descriptors no frame will take mean the peer's frames and descriptors no
    /// longer line up (PROTOCOL.md §4.22). A frame's descriptors arrive with its first byte,
    /// so what is still held belongs to the frame at the head of the kept input, and must be
    /// exactly what it announces.
    func checkLeftoverDescriptors(_ peer: PeerPointer) {
        let held = peer.pointee.receivedDescriptors.count
        guard held > 0, peer.pointee.isOpen else { return }
        let kept = peer.pointee.input.count
        var expected: Int?
        if kept >= FrameHeader.size {
            let header = FrameHeader(loadingFrom: peer.pointee.input.readPointer)
            let carries = header.flags & FrameFlags.descriptors != 0
                && (header.type == FrameType.publish.rawValue || header.type == FrameType.send.rawValue || header.type == FrameType.reply.rawValue)
            if !carries {
                expected = 0
            } else if kept > FrameHeader.size {
                expected = Int(peer.pointee.input.readPointer.load(fromByteOffset: FrameHeader.size, as: UInt8.self))
            }
        } else if kept == 0 {
            expected = 0
        }
        // Header or count not in yet: at most what one message can carry (the kernel's SCM_MAX_FD).
        let consistent = expected.map { held == $0 } ?? (held <= 253)
        guard !consistent else { return }
        fail(peer, .descriptorCountMismatch,
            "\(held) file descriptors arrived that no frame announced (\(expected ?? 0) expected); frames and descriptors no longer line up")
    }
}
