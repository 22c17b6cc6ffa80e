import HeraldProtocol

/// The messages matching one or more topic filters, as an async sequence.
///
/// ```swift
/// let subscription = try await bus.subscribe("sensors/#")
/// for try await message in subscription {
///     print(message.topic, message.payload.count)
/// }
/// ```
///
/// Iteration ends normally (returns nil) after ``cancel()``, ``Bus/close()`` or a broker
/// GOODBYE, once the messages already received have been handed out. It throws the
/// ``HeraldError`` if the connection failed (fatal broker error, broker vanished, I/O error).
///
/// A subscription is meant for one consumer: ending iteration early (leaving a
/// `for try await` loop, i.e. the iterator being released) or cancelling the iterating task
/// unsubscribes. So does releasing the subscription without iterating it.
///
/// Messages are buffered per subscription up to ``BusOptions/subscriptionBufferLimit``
/// bytes; beyond that the bus stops reading from the broker until the consumer catches up,
/// and the broker's slow-consumer policy applies. So iterate every subscription you keep
/// (or cancel it): one that is kept but never read eventually holds up the others.
public final class Subscription: AsyncSequence, Sendable {
    /// The sequence's elements: delivered messages.
    public typealias Element = Message
    /// The error iteration throws when the connection fails.
    public typealias Failure = HeraldError

    /// The bus the subscription belongs to (kept alive by the subscription).
    public let bus: Bus
    /// The filters, in the order given.
    public let filters: [String]
    let state: SubscriptionState

    /// The filter this subscription was created with (the first one, if there are several).
    public var filter: String { filters[0] }

    init(bus: Bus, state: SubscriptionState) {
        self.bus = bus
        self.state = state
        self.filters = state.filters.map(\.text)
    }

    deinit {
        cancelNow()
    }

    /// Ends the subscription: iteration returns nil from now on (messages not yet handed
    /// out are discarded) and the broker is told to stop routing. Returns once the broker
    /// confirmed, or at once if the connection has ended. Idempotent.
    nonisolated(nonsending) public func cancel() async {
        if state.end(.cancelled) { bus.connection.wakeIO() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            bus.connection.unsubscribe(state) { _ in continuation.resume() }
        }
    }

    /// Cancels without waiting for the broker.
    func cancelNow() {
        if state.end(.cancelled) { bus.connection.wakeIO() }
        bus.connection.unsubscribe(state, completion: nil)
    }

    /// Creates the iterator. Releasing it (for example by leaving a `for try await` loop)
    /// cancels the subscription.
    public func makeAsyncIterator() -> Iterator {
        Iterator(lifetime: IteratorLifetime(subscription: self))
    }

    /// Hands out a subscription's messages in order, taking whole batches from the shared
    /// buffer so the per-message cost involves no lock.
    public struct Iterator: AsyncIteratorProtocol {
        /// The sequence's elements: delivered messages.
        public typealias Element = Message
        /// The error iteration throws when the connection fails.
        public typealias Failure = HeraldError

        private let lifetime: IteratorLifetime
        private var batch: [Message] = []
        private var index = 0

        init(lifetime: IteratorLifetime) {
            self.lifetime = lifetime
        }

        /// The next message; nil once the subscription has ended normally or the task was
        /// cancelled (which cancels the subscription).
        ///
        /// - Throws: the ``HeraldError`` that ended the connection, once, after the messages
        ///   received before it.
        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws(HeraldError)
            -> Message?
        {
            if index < batch.count {
                index += 1
                return batch[index - 1]
            }
            if !batch.isEmpty {
                batch.removeAll(keepingCapacity: true)
                index = 0
            }
            let subscription = lifetime.subscription
            let state = subscription.state
            while true {
                switch state.take(into: &batch) {
                case .messages(let wakeReader):
                    if wakeReader { subscription.bus.connection.wakeIO() }
                    index = 1
                    return batch[0]
                case .finished:
                    return nil
                case .failed(let error):
                    throw error
                case .empty:
                    await withTaskCancellationHandler {
                        await state.waitForMessages(isolation: actor)
                    } onCancel: {
                        subscription.cancelNow()
                    }
                }
            }
        }

        /// The next message; see ``next(isolation:)``.
        nonisolated(nonsending) public mutating func next() async throws(HeraldError) -> Message? {
            try await next(isolation: #isolation)
        }
    }
}

/// Cancels its subscription when the last copy of an iterator goes away.
final class IteratorLifetime: Sendable {
    let subscription: Subscription

    init(subscription: Subscription) {
        self.subscription = subscription
    }

    deinit {
        subscription.cancelNow()
    }
}
