import HeraldProtocol
import Logging

/// Bytes in: frames are handled in place where they arrive; a partial frame is kept, within
/// the partial-input budget and the frame timeout, and each header is checked before its
/// body is kept (PROTOCOL.md §3.5, §5.6).
extension BrokerCore {

    /// Processes bytes received from `peer` at `now`: every whole frame is handled in place;
    /// a trailing partial frame (or the rest of the batch, if the peer gets paused) is kept.
    /// When a partial frame is already kept, only its missing bytes are copied to complete
    /// it; the rest of `bytes` is still processed in place (no second copy of the batch).
    func receive(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer, now: Double) {
        clock = now
        guard bytes.count > 0, peer.pointee.isOpen else { return }
        // Once per read, not per message.
        statistics.bytesReceived &+= UInt64(bytes.count)
        var used = 0
        if !peer.pointee.input.isEmpty {
            used = completeKeptFrame(peer, bytes)
            guard used < bytes.count, peer.pointee.input.isEmpty, peer.pointee.isOpen, peer.pointee.blockedOnCount == 0
            else {
                if used < bytes.count && peer.pointee.isOpen { keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[used...])) }
                return
            }
        }
        let rest = UnsafeRawBufferPointer(rebasing: bytes[used...])
        let processed = process(peer, rest.baseAddress!, rest.count)
        if processed < rest.count, peer.pointee.isOpen {
            keepInput(peer, UnsafeRawBufferPointer(rebasing: rest[processed...]))
        }
    }

    /// Keeps unprocessed bytes in `peer`'s input, within the partial-input budget. The
    /// peer whose bytes would go past the budget is closed with `input_budget_exceeded`,
    /// unless the broker itself paused it (its batch is kept because of backpressure).
    func keepInput(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer) {
        if inputBytesHeld + bytes.count > configuration.partialInputBudget && !peer.pointee.isReadPaused {
            statistics.inputBudgetRefusals &+= 1
            fail(peer, .inputBudgetExceeded,
                "the broker holds \(inputBytesHeld) bytes of partially received frames, its limit is \(configuration.partialInputBudget)")
            return
        }
        if peer.pointee.input.isEmpty { peer.pointee.inputSince = clock }
        peer.pointee.input.append(bytes)
        inputBytesHeld += bytes.count
    }

    /// Drops the first `count` bytes of `peer`'s input (processed), or all of it.
    func releaseInput(_ peer: PeerPointer, _ count: Int? = nil) {
        let released = count ?? peer.pointee.input.count
        if count == nil { peer.pointee.input.removeAll() } else { peer.pointee.input.discard(released) }
        inputBytesHeld -= released
        // What is left starts a new frame (or is a paused batch): its clock starts now.
        if released > 0 { peer.pointee.inputSince = clock }
    }

    /// The largest frame `peer` may send in its current state: a HELLO before the
    /// handshake, the configured maximum after it.
    @inline(__always)
    func maxInputFrameSize(_ peer: PeerPointer) -> Int {
        peer.pointee.state == .handshaking ? ProtocolLimits.maxHelloFrameSize : configuration.maxFrameSize
    }

    /// Moves just enough of `bytes` into the kept input to complete its first frame, then
    /// processes the kept input. Returns how many bytes of `bytes` it took. A header that
    /// is refused is refused before any of its body is kept.
    func completeKeptFrame(_ peer: PeerPointer, _ bytes: UnsafeRawBufferPointer) -> Int {
        var used = 0
        let kept = peer.pointee.input.count
        if kept < FrameHeader.size {
            let take = min(FrameHeader.size - kept, bytes.count)
            keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[0..<take]))
            used = take
            if peer.pointee.input.count < FrameHeader.size { return used }
        }
        let header = FrameHeader(loadingFrom: peer.pointee.input.readPointer)
        guard checkHeader(peer, header) else { return used }
        let missing = header.frameLength - peer.pointee.input.count
        if missing > 0 {
            let take = min(missing, bytes.count - used)
            keepInput(peer, UnsafeRawBufferPointer(rebasing: bytes[used..<used + take]))
            used += take
            if take < missing || !peer.pointee.isOpen { return used }
        }
        processBufferedInput(peer, now: clock)
        return used
    }

    /// Processes input kept while `peer` was paused; call when it appears in ``resumed``.
    func processBufferedInput(_ peer: PeerPointer, now: Double) {
        clock = now
        guard !peer.pointee.input.isEmpty else { return }
        let used = process(peer, peer.pointee.input.readPointer, peer.pointee.input.count)
        if peer.pointee.state == .closing || peer.pointee.state == .closed {
            releaseInput(peer)
        } else {
            releaseInput(peer, used)
        }
    }

    /// The frame loop. Hot path: PUBLISH frames from active peers are recognised from the
    /// header alone and routed in place, without decoding into a value.
    func process(_ peer: PeerPointer, _ base: UnsafeRawPointer, _ count: Int) -> Int {
        let maxFrameSize = configuration.maxFrameSize
        var offset = 0
        while count - offset >= FrameHeader.size {
            let frame = base + offset
            let header = FrameHeader(loadingFrom: frame)
            let length = header.frameLength
            if header.type == FrameType.publish.rawValue && peer.pointee.state == .active {
                guard length <= maxFrameSize else {
                    fail(peer, .frameTooLarge, "frame of \(length) bytes exceeds the maximum of \(maxFrameSize)")
                    return offset
                }
                guard count - offset >= length else { break }
                publish(peer, frame, header)
                offset += length
                if peer.pointee.blockedOnCount > 0 || peer.pointee.state != .active { break }
                continue
            }
            if !checkHeader(peer, header) { return offset }
            guard count - offset >= length else { break }
            handleControlFrame(peer, header, UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: Int(header.bodyLength)))
            offset += length
            if !peer.pointee.isOpen { return offset }
            if peer.pointee.blockedOnCount > 0 { break }
        }
        return offset
    }

    /// Checks a header as soon as its 8 bytes are in, before any of the body is kept, in
    /// the order of PROTOCOL.md §3.5: before the handshake, HELLO only (`handshake_required`)
    /// and no longer than the largest HELLO; after it, a defined type (`unknown_frame_type`)
    /// that clients send (`unexpected_frame`, which a second HELLO also gets) within the
    /// maximum frame size (`frame_too_large`). Closes the peer and returns false otherwise.
    func checkHeader(_ peer: PeerPointer, _ header: FrameHeader) -> Bool {
        let length = header.frameLength
        let maximum = maxInputFrameSize(peer)
        guard let type = FrameType(rawValue: header.type), peer.pointee.state == .active || type == .hello else {
            // Before the handshake only HELLO makes sense; saying so beats "unknown type 0x2f"
            // for whatever connected by mistake.
            let name = FrameType(rawValue: header.type).map { "\($0)" } ?? "bytes that are not a Herald frame"
            if peer.pointee.state == .handshaking {
                fail(peer, .handshakeRequired, "expected HELLO, got \(name)")
            } else {
                fail(peer, .unknownFrameType, "unknown frame type 0x\(String(header.type, radix: 16))")
            }
            return false
        }
        if peer.pointee.state == .active && (!type.isSentByClients || type == .hello) {
            fail(peer, .unexpectedFrame, type == .hello ? "HELLO after the handshake" : "\(type) is not sent by clients")
            return false
        }
        guard length <= maximum else {
            let what = peer.pointee.state == .handshaking ? "HELLO of \(length) bytes exceeds the \(maximum) bytes a HELLO can have"
                : "frame of \(length) bytes exceeds the maximum of \(maximum)"
            fail(peer, .frameTooLarge, what)
            return false
        }
        return true
    }
}
