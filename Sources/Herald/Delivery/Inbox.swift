import HeraldProtocol

/// The iterator's side: the buffers it took from the ``SubscriptionState``, and a cursor
/// that turns their frames into messages one at a time.
///
/// A value type stored in the iterator, so the per-message path mutates only the caller's
/// own storage: no lock, no reference counting, no dynamic exclusivity check.
@usableFromInline
struct Inbox {
    /// Buffers taken from the subscription, read in order; kept (and so their memory valid)
    /// until they are given back by ``SubscriptionState/take(into:)``.
    var buffers: [DeliveryBuffer] = []
    /// The next buffer to read after the current one.
    var nextBuffer = 0
    /// The next frame to read, and the end of the current buffer's frames.
    var cursor: UnsafeRawPointer?
    var end: UnsafeRawPointer?
    /// Where the current run of frames ends: the next ``DeliveryRun`` record starts there.
    var runEnd: UnsafeRawPointer?
    /// What the current run's record says for its first message (reset once it is read).
    var runDroppedBefore: UInt64 = 0
    var runContinuesTopic = true
    /// A reconnect marker was read: the next message has ``Message/afterReconnect`` set.
    var reconnectPending = false
    /// The current run is a retained message, stored at this time (ns since the epoch); 0 if not.
    var retainedPending: UInt64 = 0
    /// The current run is a request to answer with this call id; 0 if not.
    var callPending: UInt32 = 0
    /// The current run's message carries this attachment (descriptors, a sealed payload),
    /// and `hasAttachment` says so: a plain flag, tested on the hot path instead of the
    /// reference (messages without one, nearly all, then cost nothing for it).
    var attachmentPending: MessageAttachment?
    var hasAttachment = false
    /// The attachment of the message ``nextInPlace()`` just returned (when `hasAttachment`).
    var currentAttachment: MessageAttachment?
    /// The last topic seen (pointing into a held buffer) and its String, so a run of
    /// messages on one topic decodes it once.
    var topicBytes: UnsafeRawPointer?
    var topicLength = -1
    var topic = ""

    @usableFromInline
    init() {}

    /// The next buffered message, or nil when every held buffer has been read.
    @usableFromInline
    mutating func next() -> Message? {
        guard let next = nextInPlace() else { return nil }
        if _slowPath(hasAttachment) { return attachedMessage(next) }
        // Not Array(unsafeUninitializedCapacity:): that path allocates through an unspecialized
        // stdlib function that looks the storage type's metadata up on every call.
        var message = Message(
            topic: next.topic, payload: [UInt8](next.payload), sender: next.sender, droppedBefore: next.droppedBefore,
            afterReconnect: next.afterReconnect, retainedAt: Message.date(retainedNanoseconds: next.retainedAt))
        message.callID = next.callID
        return message
    }

    /// The next buffered message read in place, or nil when every held buffer has been read.
    @inline(__always)
    mutating func nextView() -> MessageView? {
        guard let next = nextInPlace() else { return nil }
        let attachment = _slowPath(hasAttachment) ? takeAttachment() : nil
        return MessageView(
            topic: next.topic, payloadBytes: next.payload, sender: next.sender, droppedBefore: next.droppedBefore,
            afterReconnect: next.afterReconnect, retainedAt: Message.date(retainedNanoseconds: next.retainedAt),
            attachment: attachment)
    }

    /// The message `next` with its run's attachment (off the hot path): a payload mapped from
    /// a sealed memfd is not copied, the message refers to the mapping.
    private mutating func attachedMessage(
        _ next: (topic: String, payload: UnsafeRawBufferPointer, sender: Message.Sender, droppedBefore: UInt64, afterReconnect: Bool,
            retainedAt: UInt64, callID: UInt32)
    ) -> Message {
        var message = Message(
            topic: next.topic, payloadBytes: next.payload, attachment: takeAttachment(), sender: next.sender,
            droppedBefore: next.droppedBefore, afterReconnect: next.afterReconnect,
            retainedAt: Message.date(retainedNanoseconds: next.retainedAt))
        message.callID = next.callID
        return message
    }

    /// The current message's attachment, handed over (off the hot path).
    private mutating func takeAttachment() -> MessageAttachment? {
        hasAttachment = false
        return currentAttachment.take()
    }

    /// The parts of the next buffered message, the payload in place; nil when every held
    /// buffer has been read. (A tuple rather than a ``MessageView``: the noncopyable view
    /// would be built and consumed on ``next()``'s per-message path for nothing.)
    @inline(__always)
    mutating func nextInPlace() -> (
        topic: String, payload: UnsafeRawBufferPointer, sender: Message.Sender, droppedBefore: UInt64, afterReconnect: Bool,
        retainedAt: UInt64, callID: UInt32
    )? {
        guard prepare() else { return nil }
        let frame = cursor.unsafelyUnwrapped
        let droppedBefore = runDroppedBefore
        let afterReconnect = reconnectPending
        let retainedAt = retainedPending
        retainedPending = 0
        let callID = callPending
        callPending = 0
        let sameTopic = runContinuesTopic
        // Only the run's first message carries what its record says.
        runDroppedBefore = 0
        reconnectPending = false
        runContinuesTopic = true
        let header = FrameHeader(loadingFrom: frame)
        cursor = frame + header.frameLength
        let body = frame + FrameHeader.size
        let topicLength = Int(header.aux)
        let topicStart = body + SenderBlock.size
        if !sameTopic
            && (topicLength != self.topicLength || !ByteComparison.equal(topicStart, topicBytes.unsafelyUnwrapped, count: topicLength))
        {
            topic = String(decoding: UnsafeRawBufferPointer(start: topicStart, count: topicLength), as: UTF8.self)
            topicBytes = topicStart
            self.topicLength = topicLength
        }
        var payload = UnsafeRawBufferPointer(start: topicStart + topicLength, count: Int(header.bodyLength) - SenderBlock.size - topicLength)
        if _slowPath(attachmentPending != nil) {
            // This run's one message carries an attachment: from now on the current message's.
            currentAttachment = attachmentPending.take()
            hasAttachment = true
            if let mapped = currentAttachment?.mappedPayload { payload = mapped.bytes }
        }
        let block = SenderBlock(loadingFrom: body)
        let sender = Message.Sender(
            peerID: block.senderID, pid: block.credentials.pid, uid: block.credentials.uid, gid: block.credentials.gid)
        return (topic, payload, sender, droppedBefore, afterReconnect, retainedAt, callID)
    }

    /// Whether a message is buffered: positions the cursor on it, reading run records (and
    /// reconnect markers, which hold no message) on the way and moving to the next held
    /// buffer when one is used up.
    @inline(__always)
    mutating func prepare() -> Bool {
        while true {
            if cursor == end {
                guard advance() else { return false }
            }
            guard cursor == runEnd else { return true }
            // A run starts: its record says what was lost before it and whether its topic is new.
            let record = cursor.unsafelyUnwrapped
            let run = DeliveryRun(loadingFrom: record)
            cursor = record + DeliveryRun.size
            runEnd = cursor.unsafelyUnwrapped + run.length
            if run.retained {
                retainedPending = run.droppedBefore
            } else if run.call {
                callPending = UInt32(truncatingIfNeeded: run.droppedBefore)
            } else if run.attached {
                attachmentPending = buffers[nextBuffer - 1].attachments[Int(run.droppedBefore)]
            } else {
                runDroppedBefore &+= run.droppedBefore
            }
            runContinuesTopic = run.continuesTopic
            if run.afterReconnect { reconnectPending = true }
        }
    }

    /// Moves the cursor to the next held buffer with frames; false if there is none.
    private mutating func advance() -> Bool {
        while nextBuffer < buffers.count {
            let buffer = buffers[nextBuffer]
            nextBuffer += 1
            if !buffer.isEmpty {
                let start = UnsafeRawPointer(buffer.bytes)
                cursor = start
                end = start + buffer.count
                // Every buffer starts with a run record.
                runEnd = start
                return true
            }
        }
        return false
    }

    /// Forgets the read position and everything pointing into the held buffers, which are
    /// about to be given back. Returns them (to recycle).
    mutating func releaseBuffers() -> [DeliveryBuffer] {
        cursor = nil
        end = nil
        runEnd = nil
        topicBytes = nil
        topicLength = -1
        attachmentPending = nil
        currentAttachment = nil
        hasAttachment = false
        nextBuffer = 0
        var released: [DeliveryBuffer] = []
        swap(&released, &buffers)
        return released
    }
}
