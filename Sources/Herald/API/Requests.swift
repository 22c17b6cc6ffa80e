import HeraldProtocol
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// MARK: - Asking

extension Bus {
    /// Sends a request on `topic` and returns the answer of the responder it went to.
    ///
    /// ```swift
    /// let reply = try await bus.request("settings/get", "theme", timeout: .seconds(2))
    /// print(reply.string ?? "", "from pid", reply.sender.pid)
    /// ```
    ///
    /// The broker hands the request to one of the responders subscribed to the topic
    /// (``requests(on:)``; several take turns) and routes its answer to this connection only.
    /// The answer is a ``Message`` on `topic` whose ``Message/sender`` is the responder, as
    /// the kernel reported it to the broker. Many requests may be waiting at once on one bus.
    ///
    /// - Throws: ``HeraldError/noResponders(_:)`` at once if nobody answers the topic;
    ///   ``HeraldError/requestFailed(code:message:)`` if the responder failed it;
    ///   ``HeraldError/responderGone(_:)`` if the responder disconnected before answering;
    ///   ``HeraldError/timeout`` after `timeout`; ``HeraldError/requestRefused(_:)``,
    ///   ``HeraldError/forbidden(_:)``, ``HeraldError/invalidTopic(_:reason:)``,
    ///   ``HeraldError/messageTooLarge(size:maximum:)``; ``HeraldError/connectionLost(_:)``
    ///   if the connection is lost (or reconnecting) before the answer, ``HeraldError/closed``.
    nonisolated(nonsending) public func request(
        _ topic: String, _ payload: some Collection<UInt8>, timeout: Duration = .seconds(5)
    ) async throws(HeraldError) -> Message {
        guard UInt32(welcome.capabilities) & Capabilities.requests != 0 else {
            throw .brokerError(code: ErrorCode.unexpectedFrame.rawValue,
                message: "this broker does not support request/reply (it did not confirm the 'requests' capability)")
        }
        // The broker answers requests on $SYS/broker/… itself (see Bus.peers()).
        let topicBytes = try validatedTopic(topic, brokerTopics: true)
        let bytes = Array(payload)
        let size = FrameHeader.size + 8 + topicBytes.count + bytes.count
        guard size <= broker.maxFrameSize else { throw .messageTooLarge(size: size, maximum: broker.maxFrameSize) }
        let milliseconds = Self.milliseconds(timeout)
        let outcome = CallOutcome()
        // The bus's I/O thread keeps the timeout (the broker keeps it too, within about a
        // second more); a late answer finds nothing waiting.
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Connection.Answer, HeraldError>, Never>) in
            outcome.install(continuation)
            connection.request(topic: topicBytes, payload: bytes, timeoutMilliseconds: milliseconds, timeout: timeout) {
                outcome.resolve($0)
            }
        }
        let answer = try result.get()
        let response = answer.response
        let sender = Message.Sender(
            peerID: response.senderID, pid: response.sender.pid, uid: response.sender.uid, gid: response.sender.gid)
        guard response.status == 0 else {
            throw .requestFailed(code: response.status, message: String(decoding: response.payload, as: UTF8.self))
        }
        var message = Message(topic: topic, payload: response.payload, sender: sender)
        message.attachment = answer.attachment
        return message
    }

    /// Sends a request whose payload is the UTF-8 of `text`; see the byte-payload `request(_:_:timeout:)`.
    nonisolated(nonsending) public func request(_ topic: String, _ text: String, timeout: Duration = .seconds(5)) async throws(HeraldError)
        -> Message
    {
        try await request(topic, Array(text.utf8), timeout: timeout)
    }

    /// Whole milliseconds of `duration` for the REQUEST's `timeout_ms` (at least 1, at most
    /// what a u32 holds).
    static func milliseconds(_ duration: Duration) -> UInt32 {
        let (seconds, attoseconds) = duration.components
        let total = Double(seconds) * 1000 + Double(attoseconds) / 1e15
        return UInt32(max(1, min(Double(UInt32.max), total.rounded(.up))))
    }

    /// The UTF-8 of `topic` if it may be published to (requests follow the topic rules of
    /// publishing; with `brokerTopics`, the broker's own `$SYS/broker/…` topics pass too);
    /// throws ``HeraldError/invalidTopic(_:reason:)`` otherwise.
    func validatedTopic(_ topic: String, brokerTopics: Bool = false) throws(HeraldError) -> [UInt8] {
        let bytes = Array(topic.utf8)
        let problem = bytes.withUnsafeBytes { Topic.validatePublishable($0, maxLength: broker.maxTopicLength) }
        if let problem, !(brokerTopics && problem == .reserved && topic.hasPrefix("$SYS/broker/")) {
            throw .invalidTopic(topic, reason: "it \(problem)")
        }
        return bytes
    }
}

/// Resumes a request's continuation once: with its answer, its error or its timeout,
/// whichever comes first.
final class CallOutcome: Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<Result<Connection.Answer, HeraldError>, Never>?, result: Result<Connection.Answer, HeraldError>?)>(
        (nil, nil))

    func install(_ continuation: CheckedContinuation<Result<Connection.Answer, HeraldError>, Never>) {
        let early = state.withLock { state -> Result<Connection.Answer, HeraldError>? in
            if let result = state.result { return result }
            state.continuation = continuation
            return nil
        }
        if let early { continuation.resume(returning: early) }
    }

    func resolve(_ result: Result<Connection.Answer, HeraldError>) {
        let continuation = state.withLock { state -> CheckedContinuation<Result<Connection.Answer, HeraldError>, Never>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(returning: result)
    }
}

// MARK: - Answering

extension Bus {
    /// Answers the requests sent on topics matching `filter`, as an async sequence.
    ///
    /// ```swift
    /// for try await request in try await bus.requests(on: "settings/get") {
    ///     if let value = settings[request.string ?? ""] {
    ///         try await request.respond(value)
    ///     } else {
    ///         try await request.fail("no setting named \(request.string ?? "")")
    ///     }
    /// }
    /// ```
    ///
    /// Each request goes to one responder: when several buses serve matching filters, the
    /// broker gives them requests in turn. A responder subscription receives requests only,
    /// never published messages. Iteration behaves like a ``Subscription``'s (it ends after
    /// `cancel()`, ``close()`` or a broker GOODBYE, and throws if the connection fails);
    /// requests not yet answered when it ends fail at their requesters.
    ///
    /// - Throws: ``HeraldError/invalidFilter(_:reason:)``, ``HeraldError/forbidden(_:)``,
    ///   ``HeraldError/tooManySubscriptions``, ``HeraldError/closed``, or the reason the
    ///   connection ended.
    nonisolated(nonsending) public func requests(on filter: String) async throws(HeraldError) -> IncomingRequests {
        guard UInt32(welcome.capabilities) & Capabilities.requests != 0 else {
            throw .brokerError(code: ErrorCode.unexpectedFrame.rawValue,
                message: "this broker does not support request/reply (it did not confirm the 'requests' capability)")
        }
        let parsed: TopicFilter
        do {
            parsed = try TopicFilter(filter, maxLength: broker.maxTopicLength)
        } catch {
            throw .invalidFilter(filter, reason: "it \(error)")
        }
        let state = SubscriptionState(
            filters: [parsed], ids: connection.allocateSubscriptionIDs(1), limit: options.subscriptionBufferLimit)
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Void, HeraldError>, Never>) in
            connection.subscribe(state, responder: true) { continuation.resume(returning: $0) }
        }
        switch result {
        case .success:
            return IncomingRequests(subscription: Subscription(bus: self, state: state))
        case .failure(let error):
            state.end(.cancelled)
            connection.unsubscribe(state, completion: nil)
            throw error
        }
    }
}

/// The requests sent on the topics of a responder subscription (``Bus/requests(on:)``).
public struct IncomingRequests: AsyncSequence, Sendable {
    /// The sequence's elements: requests to answer.
    public typealias Element = IncomingRequest
    /// The error iteration throws when the connection fails.
    public typealias Failure = HeraldError

    /// The underlying subscription (its filter, its bus).
    public let subscription: Subscription

    /// Stops receiving requests; see ``Subscription/cancel()``.
    nonisolated(nonsending) public func cancel() async { await subscription.cancel() }

    /// Creates the iterator.
    public func makeAsyncIterator() -> Iterator { Iterator(base: subscription.makeAsyncIterator(), bus: subscription.bus) }

    /// Hands out the requests in the order the broker sent them.
    public struct Iterator: AsyncIteratorProtocol {
        /// The sequence's elements: requests to answer.
        public typealias Element = IncomingRequest
        /// The error iteration throws when the connection fails.
        public typealias Failure = HeraldError

        var base: Subscription.Iterator
        let bus: Bus

        /// The next request, or nil once the subscription has ended.
        public mutating func next(isolation actor: isolated (any Actor)? = #isolation) async throws(HeraldError) -> IncomingRequest? {
            guard let message = try await base.next(isolation: actor) else { return nil }
            return IncomingRequest(message: message, callID: message.callID, bus: bus)
        }
    }
}

/// One request to answer, from ``IncomingRequests``: answer it with ``respond(_:)`` or
/// ``fail(code:_:)``, once. Its requester waits (up to its own timeout) for either.
public struct IncomingRequest: Sendable {
    /// The request as a message: its topic, payload and sender (the requester, as the
    /// kernel reported it to the broker).
    public let message: Message
    let callID: UInt32
    let bus: Bus

    /// What a responder library replies when a request reaches a subscription it has already
    /// ended: the requester sees ``HeraldError/requestFailed(code:message:)`` with it.
    static let notServedStatus: UInt32 = 0xFFFF_FFFF

    /// The topic the request was sent on.
    public var topic: String { message.topic }
    /// The request's bytes.
    public var payload: [UInt8] { message.payload }
    /// The payload as UTF-8 text, or nil if it is not valid UTF-8.
    public var string: String? { message.string }
    /// Who asked.
    public var sender: Message.Sender { message.sender }

    /// Sends `payload` as the answer.
    ///
    /// - Throws: ``HeraldError/messageTooLarge(size:maximum:)`` before anything is sent;
    ///   ``HeraldError/closed`` or the reason the connection ended. If the broker no longer
    ///   waits for this answer (the request timed out, or its requester left), the bus
    ///   reports ``BusEvent/replyRefused(_:)``.
    nonisolated(nonsending) public func respond(_ payload: some Collection<UInt8>) async throws(HeraldError) {
        try send(status: 0, Array(payload))
    }

    /// Sends the UTF-8 of `text` as the answer; see the byte-payload `respond(_:)`.
    nonisolated(nonsending) public func respond(_ text: String) async throws(HeraldError) {
        try send(status: 0, Array(text.utf8))
    }

    /// Sends the JSON encoding of `value` as the answer.
    nonisolated(nonsending) public func respond<T: Encodable>(json value: T, encoder: JSONEncoder = JSONEncoder()) async throws(HeraldError) {
        let data: Data
        do { data = try encoder.encode(value) } catch { throw .invalidTopic(topic, reason: "the answer cannot be encoded as JSON: \(error)") }
        try send(status: 0, Array(data))
    }

    /// Fails the request: its requester gets ``HeraldError/requestFailed(code:message:)``
    /// with `code` (any value but 0; 1 by default) and `message`.
    nonisolated(nonsending) public func fail(code: UInt32 = 1, _ message: String) async throws(HeraldError) {
        try send(status: code == 0 ? 1 : code, Array(message.utf8))
    }

    private func send(status: UInt32, _ payload: [UInt8]) throws(HeraldError) {
        let size = FrameHeader.size + 8 + payload.count
        guard size <= bus.broker.maxFrameSize else { throw .messageTooLarge(size: size, maximum: bus.broker.maxFrameSize) }
        try bus.connection.reply(callID: callID, status: status, payload: payload)
    }
}
