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
///
/// For the highest rates, ``Iterator/nextBatch(limit:_:)`` hands out everything received so
/// far as ``MessageView``s read in place, with no allocation per message.
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
    public var filter: String { filters.first ?? "" }

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
    /// queue so the per-message cost involves no lock.
    public struct Iterator: AsyncIteratorProtocol {
        /// The sequence's elements: delivered messages.
        public typealias Element = Message
        /// The error iteration throws when the connection fails.
        public typealias Failure = HeraldError

        private let lifetime: IteratorLifetime
        @usableFromInline var inbox = Inbox()

        init(lifetime: IteratorLifetime) {
            self.lifetime = lifetime
        }

        /// The next message; nil once the subscription has ended normally or the task was
        /// cancelled (which cancels the subscription).
        ///
        /// Runs on the caller's executor (`nonisolated(nonsending)`), which is what a
        /// `for try await` loop passes as `actor` anyway, so `actor` is not used. Not isolated
        /// to `actor` for speed: such a method starts with an executor hop, which the
        /// optimizer often cannot remove from the caller's loop, so every message would pay
        /// for a task switch.
        ///
        /// - Throws: the ``HeraldError`` that ended the connection, once, after the messages
        ///   received before it.
        @inlinable
        nonisolated(nonsending) public mutating func next(isolation actor: (any Actor)? = #isolation)
            async throws(HeraldError) -> Message?
        {
            // Inlinable so a message already taken costs a plain call, not an async one.
            if let message = inbox.next() { return message }
            return try await refill()
        }

        /// The next message; see ``next(isolation:)``.
        @inlinable
        nonisolated(nonsending) public mutating func next() async throws(HeraldError) -> Message? {
            if let message = inbox.next() { return message }
            return try await refill()
        }

        /// Waits for messages like ``next()``, then calls `body` with each message received so
        /// far, in order, at most `limit` of them; returns how many. 0 means the
        /// subscription has ended normally (where ``next()`` returns nil).
        ///
        /// The fast way to consume: a ``MessageView`` is read in place from the receive
        /// buffer and lent to `body` (it cannot outlive the call), so a message costs no
        /// allocation and no async call unless `body` asks for ``MessageView/message``. Messages not handed out (beyond `limit`) stay buffered for
        /// the next call, which can mix freely with ``next()``.
        ///
        /// ```swift
        /// var messages = subscription.makeAsyncIterator()
        /// while try await messages.nextBatch({ view in total += view.payloadCount }) > 0 {}
        /// ```
        ///
        /// - Throws: the ``HeraldError`` that ended the connection, once, after the messages
        ///   received before it.
        nonisolated(nonsending) public mutating func nextBatch(
            limit: Int = .max, _ body: (borrowing MessageView) -> Void
        ) async throws(HeraldError) -> Int {
            precondition(limit > 0, "nextBatch needs a positive limit")
            guard try await fill() else { return 0 }
            var handled = 0
            while handled < limit, let view = inbox.nextView() {
                body(view)
                handled += 1
            }
            return handled
        }

        /// Takes the queued batches (waiting for some if there are none) and returns the first
        /// message; nil or throws once the subscription has ended.
        @usableFromInline
        nonisolated(nonsending) mutating func refill() async throws(HeraldError) -> Message? {
            guard try await fill() else { return nil }
            return inbox.next()
        }

        /// Makes sure the inbox holds a message, taking the queued batches and waiting for
        /// some if needed; false once the subscription has ended normally.
        nonisolated(nonsending) mutating func fill() async throws(HeraldError) -> Bool {
            if inbox.prepare() { return true }
            let subscription = lifetime.subscription
            let state = subscription.state
            while true {
                switch state.take(into: &inbox) {
                case .messages(let wakeReader):
                    if wakeReader { subscription.bus.connection.wakeIO() }
                    if inbox.prepare() { return true }
                case .finished:
                    return false
                case .failed(let error):
                    throw error
                case .empty:
                    await withTaskCancellationHandler {
                        await state.waitForMessages()
                    } onCancel: {
                        subscription.cancelNow()
                    }
                }
            }
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
