import HeraldProtocol
import Synchronization

/// The client side of one ``Subscription``: its filters, the broker-side subscription ids
/// that carry them, and the buffer the I/O thread fills and the iterator drains.
///
/// Delivery is batched: the I/O thread appends everything one socket read produced under one
/// lock acquisition, and the iterator swaps the whole array out under one acquisition too.
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
        /// `local` now holds at least one message. `wakeReader`: the reader was paused on
        /// this subscription and must be woken.
        case messages(wakeReader: Bool)
        case finished
        case failed(HeraldError)
        case empty
    }

    private struct Shared {
        var messages: [Message] = []
        /// Approximate bytes in `messages`.
        var bytes = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var end: End?
        var failureReported = false
        /// The I/O thread stopped reading because of this subscription.
        var readerBlocked = false
    }

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

    // MARK: I/O thread side

    /// Hands a batch to the consumer (leaving `batch` empty) and wakes it if it waits.
    /// Returns true if the subscription is now over its limit, so the reader must pause.
    func deliver(_ batch: inout [Message], bytes: Int) -> Bool {
        let (waiters, blocked) = shared.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
            guard state.end == nil else {
                batch.removeAll(keepingCapacity: true)
                return ([], false)
            }
            if state.messages.isEmpty {
                swap(&state.messages, &batch)
            } else {
                state.messages.append(contentsOf: batch)
                batch.removeAll(keepingCapacity: true)
            }
            state.bytes += bytes
            if state.bytes > limit { state.readerBlocked = true }
            let waiters = state.waiters
            if !waiters.isEmpty { state.waiters = [] }
            return (waiters, state.readerBlocked)
        }
        for waiter in waiters { waiter.resume() }
        return blocked
    }

    /// Whether the reader is still paused because of this subscription.
    var isBlockingReader: Bool { shared.withLock { $0.readerBlocked } }

    /// Ends the subscription (the first end wins). Returns true if the reader was paused on
    /// it and must be woken.
    @discardableResult
    func end(_ end: End) -> Bool {
        let (waiters, wasBlocking) = shared.withLock { state -> ([CheckedContinuation<Void, Never>], Bool) in
            guard state.end == nil else { return ([], false) }
            state.end = end
            if case .cancelled = end {
                state.messages = []
                state.bytes = 0
            }
            let wasBlocking = state.readerBlocked
            state.readerBlocked = false
            let waiters = state.waiters
            state.waiters = []
            return (waiters, wasBlocking)
        }
        for waiter in waiters { waiter.resume() }
        return wasBlocking
    }

    /// Whether the subscription has ended.
    var hasEnded: Bool { shared.withLock { $0.end != nil } }

    // MARK: Consumer side

    /// Swaps the buffered messages into `local`, which must be empty.
    func take(into local: inout [Message]) -> Take {
        shared.withLock { state in
            if !state.messages.isEmpty {
                swap(&local, &state.messages)
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
    }

    /// Suspends until messages arrive or the subscription ends.
    func waitForMessages(isolation: isolated (any Actor)? = #isolation) async {
        await withCheckedContinuation(isolation: isolation) { (continuation: CheckedContinuation<Void, Never>) in
            let ready = shared.withLock { state in
                if !state.messages.isEmpty || state.end != nil { return true }
                state.waiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }
}
