import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Receiving file descriptors (PROTOCOL.md §4.22): they arrive as SCM_RIGHTS with the first
/// byte of the frame that announces them, are queued in arrival order, and each MESSAGE,
/// DIRECT or RESPONSE with flag 0x80 takes its `fd_count` from the front as it is handled.
/// Off the hot path: a MESSAGE without descriptors never comes here.
extension IOLoop {
    /// Most descriptors one read can bring (the kernel's SCM_MAX_FD); the broker sends at
    /// most 16 per frame, and a read ends at a frame that brings some.
    static let descriptorSpace = 253

    /// Reads the socket like `read`, queuing the descriptors that come with the bytes.
    /// Returns the bytes read (or -1 with errno set) and whether descriptors came.
    func receive(into destination: UnsafeMutableRawPointer, _ space: Int) -> (count: Int, broughtDescriptors: Bool) {
        var descriptorCount: Int32 = 0
        var truncated: Int32 = 0
        let n = receiveSpace.withUnsafeMutableBufferPointer {
            herald_recv_stream(socket, destination, space, $0.baseAddress, Int32($0.count), &descriptorCount, &truncated)
        }
        guard n > 0, descriptorCount > 0 || truncated != 0 else { return (n, false) }
        receivedDescriptors.append(contentsOf: receiveSpace[0..<Int(descriptorCount)])
        if truncated != 0 { descriptorsTruncated = true }
        return (n, true)
    }

    /// The next `count` queued descriptors, now the caller's; nil if fewer arrived (frames and
    /// descriptors no longer line up: the connection cannot be trusted).
    func takeDescriptors(_ count: Int) -> [Int32]? {
        guard receivedDescriptors.count - receivedDescriptorsHead >= count else { return nil }
        let taken = Array(receivedDescriptors[receivedDescriptorsHead..<receivedDescriptorsHead + count])
        receivedDescriptorsHead += count
        if receivedDescriptorsHead == receivedDescriptors.count {
            receivedDescriptors.removeAll(keepingCapacity: true)
            receivedDescriptorsHead = 0
        }
        return taken
    }

    /// Closes every queued descriptor (the session is over).
    func closeQueuedDescriptors() {
        for descriptor in receivedDescriptors[receivedDescriptorsHead...] { close(descriptor) }
        receivedDescriptors.removeAll()
        receivedDescriptorsHead = 0
        descriptorsTruncated = false
    }

    /// What a broker frame with `block` carries: takes its descriptors from the queue (and
    /// maps a sealed payload). nil after a protocol violation (fewer descriptors than announced).
    func attachment(for block: DescriptorBlock) -> MessageAttachment? {
        if descriptorsTruncated {
            protocolViolation("more descriptors arrived in one read than fit (SCM_RIGHTS truncated)")
            return nil
        }
        guard let descriptors = takeDescriptors(Int(block.count)) else {
            protocolViolation("a frame announced \(block.count) descriptors, fewer arrived")
            return nil
        }
        return MessageAttachment.make(block: block, received: descriptors)
    }

    /// A MESSAGE with flag 0x80 (`frame`, whole, in the read buffer): decoded, given its
    /// descriptors, and staged for every matching subscription as a run of its own (each
    /// subscription after the first gets duplicates of the descriptors).
    func handleMessageWithDescriptors(_ frame: UnsafeRawPointer, _ header: FrameHeader) {
        let body = UnsafeRawBufferPointer(start: frame + FrameHeader.size, count: Int(header.bodyLength))
        let delivery: Delivery
        do {
            guard case .message(let decoded) = try FrameDecoder.decodeBody(type: .message, header: header, body: body) else {
                protocolViolation("MESSAGE did not decode as one")
                return
            }
            delivery = decoded
        } catch {
            protocolViolation("MESSAGE: \(error)")
            return
        }
        guard let block = delivery.descriptors else {
            protocolViolation("MESSAGE with flags 0x\(String(header.flags, radix: 16))")
            return
        }
        guard let attachment = attachment(for: block) else { return }
        let route = self.route(UnsafeRawBufferPointer(start: frame + FrameHeader.size + SenderBlock.size, count: Int(header.aux)))
        guard route.single != nil || route.several else { return }
        let whole = UnsafeRawBufferPointer(start: frame, count: Int(header.frameLength))
        let charge = SubscriptionState.charge(topicLength: delivery.topic.count, payloadLength: delivery.payload.count)
            + SubscriptionState.attachmentCharge(attachment)
        for (position, index) in cachedTargets.enumerated() {
            let staged = targets[index].staged
            if staged.isEmpty { touched.append(index) }
            if pendingDropped != 0 { staged.appendDropMarker(pendingDropped) }
            staged.appendAttached(frame: whole, attachment: position == 0 ? attachment : attachment.duplicate(), charge: charge)
        }
        pendingDropped = 0
    }
}
