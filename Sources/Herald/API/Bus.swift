import HeraldProtocol
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A connection to a Herald broker: publish messages, subscribe to topic filters.
///
/// ```swift
/// let bus = try await Bus.connect()
/// let battery = try await bus.subscribe("power/battery")
/// try await bus.publish("power/battery", "87")
/// for try await message in battery {
///     print(message.topic, message.string ?? "")
/// }
/// await bus.close()
/// ```
///
/// Each bus runs one I/O thread. Publishing only appends to a buffer that thread writes, so
/// one task can publish millions of small messages per second; ``flush()`` waits until the
/// broker has routed everything published before it.
///
/// Call ``close()`` when done. If the last reference to a bus goes away without it (a
/// ``Subscription`` keeps its bus alive), the bus says GOODBYE on its own and its thread
/// and socket are released within about two seconds; nothing leaks, but messages still
/// buffered may not be flushed, so prefer ``close()``.
public final class Bus: Sendable {
    /// The address the bus is connected to.
    public let address: BusAddress
    /// The broker's WELCOME, as received.
    public let welcome: Welcome
    /// The broker's WELCOME in friendlier terms: who it is and the limits in force.
    public let broker: BrokerInfo
    /// The options the bus was created with.
    public let options: BusOptions
    let connection: Connection

    /// The broker's id for this connection; it stamps every message this bus publishes.
    public var peerID: UInt64 { welcome.peerID }
    /// Payloads of at least this many bytes go as a sealed memfd (``BusOptions/sealedPayloadThreshold``
    /// where the broker confirmed descriptors; `Int.max` otherwise).
    let sealedPayloadThreshold: Int

    private init(connection: Connection, welcome: Welcome) {
        let passesDescriptors = UInt32(welcome.capabilities) & Capabilities.descriptors != 0
        self.sealedPayloadThreshold = passesDescriptors ? connection.options.sealedPayloadThreshold.map { max(0, $0) } ?? .max : .max
        self.connection = connection
        self.address = connection.address
        self.options = connection.options
        self.welcome = welcome
        self.broker = BrokerInfo(welcome)
    }

    deinit {
        connection.requestClose()
    }

    /// Connects to a broker and performs the handshake.
    ///
    /// - Parameters:
    ///   - address: `@name` for an abstract socket or a filesystem path; nil (or empty)
    ///     uses `$HERALD_ADDRESS`, else the per-user default `@herald/<uid>`
    ///     (see `BusAddress.resolve(_:)`).
    ///   - options: client name, slow-consumer policy and buffer bounds.
    /// - Throws: ``HeraldError/brokerUnreachable(address:reason:)`` if nothing listens there,
    ///   ``HeraldError/notAuthorized(uid:message:)`` if the broker refuses this user,
    ///   ``HeraldError/timeout`` if it does not answer within `options.connectTimeout`,
    ///   ``HeraldError/handshakeFailed(_:)`` or ``HeraldError/unsupportedVersion`` otherwise.
    nonisolated(nonsending) public static func connect(to address: String? = nil, options: BusOptions = BusOptions()) async throws(HeraldError)
        -> Bus
    {
        let resolved = BusAddress.resolve(address)
        guard resolved.isValid else {
            throw .brokerUnreachable(
                address: resolved.description,
                reason: "not a valid address (1 to \(BusAddress.maxNameLength) bytes after the optional '@')")
        }
        let connection = try Connection.create(address: resolved, options: options)
        let welcome = try await connection.start().get()
        if options.lastWill != nil {
            guard UInt32(welcome.capabilities) & Capabilities.lastWill != 0 else {
                connection.requestClose()
                await connection.waitUntilExited()
                throw .handshakeFailed("this broker does not support last wills (it did not confirm the 'last_will' capability)")
            }
            if let frame = connection.willFrame() { _ = connection.enqueue(frame) }
        }
        return Bus(connection: connection, welcome: welcome)
    }

    // MARK: - Publishing

    /// Publishes `payload` on `topic` to every matching subscriber.
    ///
    /// Returns as soon as the message is buffered for the I/O thread; the broker sends no
    /// acknowledgement. Use ``flush()`` to wait until the broker has routed it (and learn
    /// whether it refused it). Suspends only while the outgoing buffer holds
    /// ``BusOptions/publishBufferLimit`` bytes; messages are never dropped.
    ///
    /// With `retain`, the broker also keeps the message as the topic's **retained** message,
    /// its current value: every subscription added later whose filter matches the topic
    /// receives it first, with ``Message/isRetained`` set (the "current value" pattern: a
    /// panel started after the battery service still sees the battery level at once). A later
    /// retained publish on the topic replaces it; an empty retained payload clears it. The
    /// broker holds retained messages within a per-user quota: over it, the publish is
    /// refused (``flush()`` throws ``HeraldError/retainedQuotaExceeded(_:)``), and nothing is
    /// ever evicted silently.
    ///
    /// - Throws: ``HeraldError/invalidTopic(_:reason:)`` or
    ///   ``HeraldError/messageTooLarge(size:maximum:)`` before anything is sent;
    ///   ``HeraldError/closed`` after ``close()``; the reason the connection ended if it did.
    @inlinable
    nonisolated(nonsending) public func publish(
        _ topic: String, _ payload: some Collection<UInt8>, retain: Bool = false
    ) async throws(HeraldError) {
        // Inlinable so the caller's async frame is used: the fast path makes no allocation
        // beyond the payload copy into the outgoing buffer, and never suspends.
        while true {
            let attempt =
                payload.withContiguousStorageIfAvailable { attemptPublish(topic, UnsafeRawBufferPointer($0), retain: retain) }
                ?? Array(payload).withUnsafeBytes { attemptPublish(topic, $0, retain: retain) }
            switch attempt {
            case .queued: return
            case .failed(let error): throw error
            case .full: await waitForPublishSpace()
            }
        }
    }

    /// Publishes the UTF-8 bytes of `text` on `topic`; see the byte-payload `publish(_:_:retain:)`.
    @inlinable
    nonisolated(nonsending) public func publish(_ topic: String, _ text: String, retain: Bool = false) async throws(HeraldError) {
        try await publish(topic, text.utf8, retain: retain)
    }

    /// Publishes `value` encoded as JSON on `topic`.
    ///
    /// - Throws: the encoder's `EncodingError`, or a ``HeraldError`` as for a byte payload.
    nonisolated(nonsending) public func publish<T: Encodable>(
        _ topic: String, json value: T, encoder: JSONEncoder = JSONEncoder(), retain: Bool = false
    ) async throws {
        let data = try encoder.encode(value)
        try await publish(topic, data, retain: retain)
    }

    /// One attempt to append a PUBLISH frame (validation, one lock, one append).
    @usableFromInline
    func attemptPublish(_ topic: String, _ payload: UnsafeRawBufferPointer, retain: Bool) -> PublishAttempt {
        if payload.count >= sealedPayloadThreshold && !retain { return attemptSealedPublish(topic, payload) }
        let flags = retain ? FrameFlags.retain : 0
        let maxTopicLength = broker.maxTopicLength
        let maxFrameSize = broker.maxFrameSize
        if let attempt = topic.utf8.withContiguousStorageIfAvailable({
            connection.tryPublish(
                topic: UnsafeRawBufferPointer($0), payload: payload, flags: flags, maxTopicLength: maxTopicLength,
                maxFrameSize: maxFrameSize)
        }) {
            return attempt
        }
        return Array(topic.utf8).withUnsafeBytes {
            connection.tryPublish(topic: $0, payload: payload, flags: flags, maxTopicLength: maxTopicLength, maxFrameSize: maxFrameSize)
        }
    }

    /// Suspends until the I/O thread has taken the full outgoing buffer.
    ///
    /// Nonsending, so a caller that inlined `publish` needs no executor hop after it: such
    /// a hop would leave the caller's executor unknown to the optimizer, which then keeps a
    /// hop in every later `for try await` iteration over a subscription.
    @usableFromInline
    nonisolated(nonsending) func waitForPublishSpace() async {
        await connection.waitForPublishSpace()
    }

    /// Returns once the broker has routed every message this bus published before the call.
    ///
    /// - Throws: the error the broker reported for a message published since the previous
    ///   flush, if any (it is also reported as ``BusEvent/publishFailed(_:)``); otherwise
    ///   ``HeraldError/closed`` or the reason the connection ended.
    ///
    /// While the bus is reconnecting, it waits for the new connection (the flush is sent again
    /// once it is up), as long as the reconnect policy keeps trying; use ``flush(timeout:)``
    /// to bound that.
    nonisolated(nonsending) public func flush() async throws(HeraldError) {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, HeraldError>, Never>) in
            connection.ping { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    /// Like ``flush()``, but throws ``HeraldError/timeout`` if the broker has not confirmed
    /// within `timeout` (for instance because the bus is still reconnecting). The messages
    /// stay queued and are sent once connected: only the wait is given up.
    nonisolated(nonsending) public func flush(timeout: Duration) async throws(HeraldError) {
        let once = FlushOutcome()
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, HeraldError>, Never>) in
            once.install(continuation)
            connection.ping { once.resolve($0) }
            Task {
                try? await Task.sleep(for: timeout)
                once.resolve(.failure(.timeout))
            }
        }
        try result.get()
    }

    // MARK: - Subscribing

    /// Subscribes to `filter` and returns the messages that match it as an async sequence.
    ///
    /// Filters are topics whose levels may be `+` (any one level) or, last, `#` (any number
    /// of levels, including none): `power/+`, `sensors/#`. Returns once the broker has
    /// confirmed the subscription, so every message published after that is delivered.
    ///
    /// - Throws: ``HeraldError/invalidFilter(_:reason:)`` (checked locally first, so nothing
    ///   is sent), ``HeraldError/tooManySubscriptions``, ``HeraldError/closed``, or the
    ///   reason the connection ended.
    nonisolated(nonsending) public func subscribe(_ filter: String) async throws(HeraldError) -> Subscription {
        try await subscribe([filter])
    }

    /// Subscribes to several filters as one subscription: a message matching any of them is
    /// delivered once, in the order the broker sent it. Throws like the single-filter `subscribe(_:)`;
    /// if any filter fails, none stays subscribed.
    nonisolated(nonsending) public func subscribe(_ filters: [String]) async throws(HeraldError) -> Subscription {
        guard !filters.isEmpty else { throw .invalidFilter("", reason: "no filter was given") }
        var parsed: [TopicFilter] = []
        parsed.reserveCapacity(filters.count)
        for text in filters {
            do {
                parsed.append(try TopicFilter(text, maxLength: broker.maxTopicLength))
            } catch {
                throw .invalidFilter(text, reason: "it \(error)")
            }
        }
        let state = SubscriptionState(
            filters: parsed, ids: connection.allocateSubscriptionIDs(parsed.count), limit: options.subscriptionBufferLimit)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, HeraldError>, Never>) in
            connection.subscribe(state) { continuation.resume(returning: $0) }
        }
        switch result {
        case .success:
            return Subscription(bus: self, state: state)
        case .failure(let error):
            state.end(.cancelled)
            connection.unsubscribe(state, completion: nil)
            throw error
        }
    }

    // MARK: - Connection state

    /// A new stream of connection-level events (drops, refused publishes, disconnection).
    ///
    /// Each call returns an independent stream that receives the events from then on; it
    /// finishes after ``BusEvent/disconnected(_:)``. A stream created after the connection
    /// ended yields only that event.
    public func events() -> AsyncStream<BusEvent> {
        connection.events()
    }

    /// Whether the connection is open (not closed, not reconnecting, not ended by the broker or an error).
    public var isConnected: Bool {
        if case .open = connection.phase { return true }
        return false
    }

    /// Why the connection ended, if it ended other than by ``close()``; nil while it is open
    /// and after ``close()``.
    public var disconnectReason: HeraldError? {
        if case .ended(let reason) = connection.phase { return reason }
        return nil
    }

    /// Says GOODBYE to the broker, waits (at most about two seconds) for it to answer,
    /// then releases the socket and the I/O thread.
    ///
    /// Messages published before the call are written before GOODBYE and the broker routes
    /// them before answering. Every subscription ends: iteration returns the messages
    /// already received, then nil. Later calls to publish, subscribe and flush throw
    /// ``HeraldError/closed``. Calling close() again (or concurrently) just waits for the
    /// first close to finish.
    nonisolated(nonsending) public func close() async {
        connection.requestClose()
        await connection.waitUntilExited()
    }
}

/// Resumes a flush's continuation once: with the PONG's outcome or with the timeout, whichever
/// comes first.
final class FlushOutcome: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Result<Void, HeraldError>, Never>?, resolved: Bool)>((nil, false))

    func install(_ continuation: CheckedContinuation<Result<Void, HeraldError>, Never>) {
        state.withLock { $0.continuation = continuation }
    }

    func resolve(_ result: Result<Void, HeraldError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<Void, HeraldError>, Never>? in
            guard !state.resolved, let continuation = state.continuation else { return nil }
            state.resolved = true
            return continuation
        }
        continuation?.resume(returning: result)
    }
}
