import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Inbound routing (hot path): MESSAGE frames are checked and matched in place in the read
/// buffer and copied, whole and in runs, into the matching subscriptions' buffers. Unsafe
/// and dense on purpose; the pointers never leave one parse pass.
extension IOLoop {
    /// Where the current run of messages goes: the last topic seen and what it matched.
    /// A local of `parseFrames`, so a message on the same topic as the previous one costs
    /// no class property access (no exclusivity check) and no reference counting.
    struct Route {
        /// The topic, pointing into the read buffer (valid for one parse pass); nil at first.
        var topic: UnsafeRawPointer?
        var topicLength = -1
        /// The buffer and target index of the only matching subscription (the common case).
        /// Unmanaged: `targets` keeps it alive for the pass, and a strong reference here
        /// would cost a retain and a release per message.
        var single: Unmanaged<DeliveryBuffer>?
        var singleIndex = 0
        /// Several subscriptions match: stage through `cachedTargets`.
        var several = false
        /// Identifies this run of messages on one topic (see ``DeliveryBuffer``).
        var topicRun = 0
    }

    /// Consecutive MESSAGE frames in the read buffer for the single subscription of the
    /// current route, not yet copied: they are copied with one `memcpy` when the run ends.
    struct Run {
        var start: UnsafeRawPointer?
        var length = 0
        var charge = 0
        var topicRun = 0
        var target: Unmanaged<DeliveryBuffer>?
        var targetIndex = 0
    }

    /// Handles every complete frame in the read buffer, then hands the staged messages over.
    ///
    /// MESSAGE frames (u64 sender peer id, u32 pid, u32 uid, u32 gid, u32 reserved, topic of
    /// `aux` bytes, payload) are checked and routed in place and copied, whole, into the
    /// matching subscriptions' buffers; the consuming task decodes them. Frames for the same
    /// single subscription and topic are copied as one run.
    func parseFrames() {
        refreshTargetsIfNeeded()
        let base = readBuffer
        let end = readEnd
        let senderSize = ProtocolLimits.messageSenderBlockSize
        let maxMessageFrame = maxFrameSize + senderSize
        var cursor = readStart
        var route = Route()
        var run = Run()
        var dropped = pendingDropped
        while true {
            let available = end - cursor
            guard available >= FrameHeader.size else { break }
            let frame = UnsafeRawPointer(base + cursor)
            let header = FrameHeader(loadingFrom: frame)
            let length = header.frameLength
            var type = FrameType.message
            if header.type != FrameType.message.rawValue || length > maxMessageFrame {
                do {
                    type = try FrameDecoder.validate(header, maxFrameSize: maxFrameSize)
                } catch {
                    stage(&run)
                    readStart = cursor
                    protocolViolation("\(error)")
                    break
                }
            }
            guard available >= length else { break }
            cursor += length
            guard type == .message else {
                stage(&run)
                readStart = cursor
                pendingDropped = dropped
                let body = UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: length - FrameHeader.size)
                handleControlFrame(type, header, body)
                if finished { break }
                // It may have delivered the staged buffers or changed the subscriptions.
                route = Route()
                dropped = pendingDropped
                continue
            }
            let topicLength = Int(header.aux)
            guard header.flags == 0, Int(header.bodyLength) >= senderSize + topicLength else {
                stage(&run)
                readStart = cursor
                if header.flags == FrameFlags.descriptors {
                    // Passes descriptors: off the hot path (IOLoopDescriptors.swift).
                    pendingDropped = dropped
                    handleMessageWithDescriptors(frame, header)
                    if finished { break }
                    route = Route()
                    dropped = pendingDropped
                    continue
                }
                protocolViolation("MESSAGE with flags 0x\(String(header.flags, radix: 16)) or a topic longer than its body")
                break
            }
            let topic = frame + FrameHeader.size + senderSize
            if topicLength != route.topicLength || !ByteComparison.equal(topic, route.topic.unsafelyUnwrapped, count: topicLength) {
                stage(&run)
                route = self.route(UnsafeRawBufferPointer(start: topic, count: topicLength))
            }
            let charge = SubscriptionState.charge(topicLength: topicLength, payloadLength: Int(header.bodyLength) - senderSize - topicLength)
            if let single = route.single {
                if dropped != 0 {
                    // The drop marker goes in front of this frame: end the run, stage it alone.
                    stage(&run)
                    let wasEmpty = single._withUnsafeGuaranteedRef {
                        let wasEmpty = $0.isEmpty
                        $0.append(frame: frame, length: length, topicRun: route.topicRun, droppedBefore: dropped, charge: charge)
                        return wasEmpty
                    }
                    if wasEmpty { touched.append(route.singleIndex) }
                    dropped = 0
                } else if run.length > 0 {
                    // The run is this route's (a new route ends it) and ends right before this
                    // frame (anything skipped in between ends it too), so the topic is the same.
                    assert(run.start.unsafelyUnwrapped + run.length == frame)
                    run.length += length
                    run.charge += charge
                } else {
                    run = Run(
                        start: frame, length: length, charge: charge, topicRun: route.topicRun, target: single,
                        targetIndex: route.singleIndex)
                }
            } else if route.several {
                stageForSeveral(frame: frame, length: length, topicRun: route.topicRun, droppedBefore: dropped, charge: charge)
                dropped = 0
            }
        }
        stage(&run)
        pendingDropped = dropped
        readStart = cursor
        if !finished {
            if readStart == readEnd {
                readStart = 0
                readEnd = 0
            } else if readEnd - readStart >= FrameHeader.size {
                let length = FrameHeader(loadingFrom: readBuffer + readStart).frameLength
                if length > readCapacity { makeRoom(for: length) }
            }
            if readCapacity - readEnd < FrameHeader.size * 64 { makeRoom(for: 0) }
        }
        deliverStaged()
    }

    /// Finds the subscriptions `topic` matches (into `cachedTargets`, which outlives a pass).
    func route(_ topic: UnsafeRawBufferPointer) -> Route {
        let known =
            cacheValid && cachedTopic.count == topic.count
            && (topic.isEmpty || cachedTopic.withUnsafeBytes { ByteComparison.equal($0.baseAddress!, topic.baseAddress!, count: topic.count) })
        if !known {
            cachedTopic.removeAll(keepingCapacity: true)
            cachedTopic.append(contentsOf: topic)
            cachedTargets.removeAll(keepingCapacity: true)
            for index in targets.indices where targets[index].filters.contains(where: { $0.matches(topic: topic) }) {
                cachedTargets.append(index)
            }
            cacheValid = true
        }
        topicRuns &+= 1
        var route = Route(topic: topic.baseAddress, topicLength: topic.count, topicRun: topicRuns)
        if cachedTargets.count == 1 {
            route.singleIndex = cachedTargets[0]
            route.single = Unmanaged.passUnretained(targets[route.singleIndex].staged)
        } else {
            route.several = !cachedTargets.isEmpty
        }
        return route
    }

    /// Copies a run of frames into its subscription's buffer and empties it.
    @inline(__always)
    func stage(_ run: inout Run) {
        guard run.length > 0, let target = run.target else { return }
        let wasEmpty = target._withUnsafeGuaranteedRef {
            let wasEmpty = $0.isEmpty
            $0.append(frames: run.start.unsafelyUnwrapped, length: run.length, topicRun: run.topicRun, charge: run.charge)
            return wasEmpty
        }
        if wasEmpty { touched.append(run.targetIndex) }
        run.length = 0
        run.charge = 0
    }

    /// Stages a MESSAGE frame for every subscription in `cachedTargets`.
    func stageForSeveral(frame: UnsafeRawPointer, length: Int, topicRun: Int, droppedBefore: UInt64, charge: Int) {
        for index in cachedTargets {
            let staged = targets[index].staged
            if staged.isEmpty { touched.append(index) }
            staged.append(frame: frame, length: length, topicRun: topicRun, droppedBefore: droppedBefore, charge: charge)
        }
    }

    /// Re-reads the subscription table if it changed (only between batches: nothing is staged).
    func refreshTargetsIfNeeded() {
        let version = connection.subscriptionsVersion.load(ordering: .acquiring)
        guard version != knownSubscriptionsVersion else { return }
        knownSubscriptionsVersion = version
        // Nothing is staged between batches: the old targets' buffers are reused.
        var buffers = targets.map(\.staged)
        targets = connection.activeSubscriptions().map {
            Target(state: $0.state, filters: $0.filters, staged: buffers.popLast() ?? DeliveryBuffer())
        }
        cacheValid = false
    }

    /// Hands each touched subscription its staged batch; pauses reading if one is over its limit.
    func deliverStaged() {
        for index in touched {
            let state = targets[index].state
            let overLimit = state.deliver(&targets[index].staged)
            if overLimit && closeDeadline == nil && !blockingSubscriptions.contains(where: { $0 === state }) {
                blockingSubscriptions.append(state)
            }
        }
        touched.removeAll(keepingCapacity: true)
    }
}
