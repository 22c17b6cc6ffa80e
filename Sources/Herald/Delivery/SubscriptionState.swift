import HeraldProtocol
import Synchronization

/// The client side of one ``Subscription``: its filters, the broker-side subscription ids
/// that carry them, and the queue the I/O thread fills and the iterator drains.
///
/// Delivery is batched: the I/O thread queues a ``DeliveryBuffer`` (everything one socket
/// read produced for this subscription) under one lock acquisition, and the iterator takes
/// the whole queue, and gives back the buffers it has read, under one acquisition too.
final class SubscriptionState: Sendable {
    /// How a subscription ended.
    enum End: Sendable {
        /// The connection ended in an orderly way (close(), broker GOODBYE): buffered
        /// messages are still handed out, then iteration returns nil.
        case finished
        /// The connection failed: buffered messages are handed out, then iteration throws.
        case failed(HeraldError)
        /// The subscription was cancelled: iteration returns nil at once.
        case cancelled
    }

    /// What ``take(into:)`` found.
    enum Take {
        /// The inbox now holds at least one message. `wakeReader`: the reader was paused on
        /// this subscription and must be woken.
        case messages(wakeReader: Bool)
        case finished
        case failed(HeraldError)
        case empty
    }

    private struct Shared {
        /// Filled buffers, oldest first.
        var queue: [DeliveryBuffer] = []
        /// Buffers the iterator has read, for the I/O thread to fill again.
        var spares: [DeliveryBuffer] = []
        /// What the queued messages are charged (see ``charge(topicLength:payloadLength:)``).
        var bytes = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var end: End?
        var failureReported = false
        /// The I/O thread stopped reading because of this subscription.
        var readerBlocked = false
    }

    /// Spare buffers kept for reuse (more are freed): enough for what the I/O thread fills
    /// while the iterator reads what it took, without keeping a burst's worth forever.
    static let maxSpares = 8

    /// The filters, in the order given to subscribe.
    let filters: [TopicFilter]
    /// The broker-side subscription id of each filter (same order).
    let ids: [UInt32]
    /// Buffered bytes above which the I/O thread stops reading.
    let limit: Int
    private let shared = Mutex(Shared())

    init(filters: [TopicFilter], ids: [UInt32], limit: Int) {
        self.filters = filters
        self.ids = ids
        self.limit = max(1, limit)
    }

    /// Bytes a buffered message is charged: its topic and payload plus bookkeeping.
    @inline(__always)
    static func charge(topicLength: Int, payloadLength: Int) -> Int { topicLength + payloadLength + 64 }

    /// What a message's attachment counts against the buffer limit besides its frame: 64 KiB
    /// per descriptor or mapped payload, so a consumer that falls behind holds at most a
    /// bounded number of them (128 in the default 8 MiB) before reading pauses, rather than
    /// running this process out of descriptors or address space.
    static func attachmentCharge(_ attachment: MessageAttachment) -> Int {
        (attachment.current.count + (attachment.mappedPayload == nil ? 0 : 1)) * (64 << 10)
    }

    // MARK: I/O thread side

    /// Queues `buffer` (not empty) for the consumer, wakes the consumer if it waits, and
    /// puts an empty buffer in its place. Returns true if the subscription is now over its
    /// limit, so the reader must pause.
    func deliver(_ buffer: inout DeliveryBuffer) -> Bool {
        let filled = buffer
        let bytes = filled.charge
        let (queued, waiters, blocked, spare) = shared.withLock {
            state -> (Bool, [CheckedContinuation<Void, Never>], Bool, DeliveryBuffer?) in
            guard state.end == nil else { return (false, [], false, nil) }
            state.queue.append(filled)
            state.bytes += bytes
            if state.bytes > limit { state.readerBlocked = true }
            let waiters = state.waiters
            if !waiters.isEmpty { state.waiters = [] }
            return (true, waiters, state.readerBlocked, state.spares.popLast())
        }
        for waiter in waiters { waiter.resume() }
        if queued {
            buffer = spare ?? DeliveryBuffer(capacity: min(filled.capacity, DeliveryBuffer.maxReusedCapacity))
        } else {
            buffer.removeAll()
        }
        return blocked
    }

    /// Whether the reader is still paused because of this subscription.
    var isBlockingReader: Bool { shared.withLock { $0.readerBlocked } }

    /// Ends the subscription (the first end wins). Returns true if the reader was paused on
    /// it and must be woken.
    @discardableResult
    func end(_ end: End) -> Bool {
        // The discarded buffers come out of the lock to be freed.
        let (waiters, wasBlocking, _) = shared.withLock {
            state -> ([CheckedContinuation<Void, Never>], Bool, [DeliveryBuffer]) in
            guard state.end == nil else { return ([], false, []) }
            state.end = end
            var discarded: [DeliveryBuffer] = []
            if case .cancelled = end {
                swap(&discarded, &state.queue)
                discarded.append(contentsOf: state.spares)
                state.spares = []
                state.bytes = 0
            }
            let wasBlocking = state.readerBlocked
            state.readerBlocked = false
            let waiters = state.waiters
            state.waiters = []
            return (waiters, wasBlocking, discarded)
        }
        for waiter in waiters { waiter.resume() }
        return wasBlocking
    }

    /// Whether the subscription has ended.
    var hasEnded: Bool { shared.withLock { $0.end != nil } }

    // MARK: Consumer side

    /// Gives back the buffers `inbox` has read (for reuse; any beyond ``maxSpares`` are freed
    /// after the lock is released) and moves every queued buffer into it.
    func take(into inbox: inout Inbox) -> Take {
        var returned = inbox.releaseBuffers()
        returned.removeAll { $0.capacity > DeliveryBuffer.maxReusedCapacity }
        for buffer in returned { buffer.removeAll() }
        var taken: [DeliveryBuffer] = []
        let result = shared.withLock { state -> Take in
            let kept = min(SubscriptionState.maxSpares - state.spares.count, returned.count)
            if kept > 0 {
                state.spares.append(contentsOf: returned[(returned.count - kept)...])
                returned.removeLast(kept)
            }
            if !state.queue.isEmpty {
                swap(&taken, &state.queue)
                // The queue reuses the given-back array's storage.
                if returned.isEmpty { swap(&returned, &state.queue) }
                state.bytes = 0
                let wake = state.readerBlocked
                state.readerBlocked = false
                return .messages(wakeReader: wake)
            }
            switch state.end {
            case nil:
                return .empty
            case .finished, .cancelled:
                return .finished
            case .failed(let error):
                if state.failureReported { return .finished }
                state.failureReported = true
                return .failed(error)
            }
        }
        inbox.buffers = taken
        return result
    }

    /// Suspends until messages arrive or the subscription ends.
    nonisolated(nonsending) func waitForMessages() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = shared.withLock { state in
                if !state.queue.isEmpty || state.end != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
