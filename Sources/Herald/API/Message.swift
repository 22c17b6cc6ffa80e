#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A message delivered to a ``Subscription``.
public struct Message: Sendable {
    /// Who published a message, as the kernel reported it to the broker; no client can forge it.
    public struct Sender: Sendable, Hashable {
        /// The broker's id for the publishing connection.
        public var peerID: UInt64
        /// The publisher's process id: the process that opened the connection. 0 when that
        /// process has exited while its connection lives on (a child or another process
        /// inherited the socket); the broker then never names a pid the kernel may have
        /// reused (PROTOCOL.md §9).
        public var pid: UInt32
        /// The publisher's user id.
        public var uid: UInt32
        /// The publisher's primary group id.
        public var gid: UInt32

        /// Whether the process that opened the publishing connection has exited: the message
        /// came from whichever process holds the socket now, with ``uid`` and ``gid`` still
        /// those the kernel reported at connect.
        public var processExited: Bool { pid == 0 }

        /// Creates a sender identity.
        public init(peerID: UInt64, pid: UInt32, uid: UInt32, gid: UInt32) {
            self.peerID = peerID
            self.pid = pid
            self.uid = uid
            self.gid = gid
        }
    }

    /// The topic the message was published on.
    public var topic: String
    /// The message bytes, exactly as published.
    ///
    /// For a payload that came as a sealed memfd (see ``SealedPayload``), this is a copy of
    /// the mapped bytes, made on each access: read such a payload in place with
    /// ``withPayloadBytes(_:)`` instead (``isMappedPayload`` tells them apart).
    @inlinable
    public var payload: [UInt8] {
        get {
            if let mappedPayload = attachment?.mappedPayload { return [UInt8](mappedPayload.bytes) }
            return inlinePayload
        }
        set {
            inlinePayload = newValue
            if attachment?.mappedPayload != nil { attachment = attachment?.withoutPayload() }
        }
    }
    /// The payload when it came in the frame. (Inlinable accessors: a subscriber's
    /// per-message reads must not cost a call into the library.)
    @usableFromInline var inlinePayload: [UInt8]
    /// Who published it.
    public var sender: Sender
    /// How many messages the broker reported dropped for this connection (slow consumer,
    /// `drop` policy) just before this one; 0 when there was no gap.
    public var droppedBefore: UInt64
    /// Whether this is the first message after the bus reconnected to its broker: messages
    /// published while it had no connection were not delivered (how many is not known).
    public var afterReconnect: Bool
    /// For a retained message (the topic's current value, handed to the subscription when it
    /// was added), when the broker stored it; nil for a message published while subscribed.
    public var retainedAt: Date?

    /// Whether this is the topic's retained message, published before the subscription was
    /// added (see ``Bus/publish(_:_:retain:)``). Retained messages come first, before any
    /// message published after the subscription was added.
    public var isRetained: Bool { retainedAt != nil }
    /// For a request a responder subscription received: the call id its reply names; 0 otherwise.
    var callID: UInt32 = 0
    /// Descriptors passed with the message and a payload that came as a sealed memfd; nil
    /// for a message with neither (the common case, at no cost).
    /// The payload is `attachment.mappedPayload` when that is set (`inlinePayload` is empty then).
    @usableFromInline var attachment: MessageAttachment?

    /// Creates a message (useful for tests and for code that forwards messages).
    public init(
        topic: String, payload: [UInt8], sender: Sender, droppedBefore: UInt64 = 0, afterReconnect: Bool = false,
        retainedAt: Date? = nil
    ) {
        self.topic = topic
        self.inlinePayload = payload
        self.sender = sender
        self.droppedBefore = droppedBefore
        self.afterReconnect = afterReconnect
        self.retainedAt = retainedAt
    }

    /// A message whose payload is read in place (`payloadBytes`, copied) unless `attachment`
    /// holds it mapped from a sealed memfd (then shared, not copied).
    init(
        topic: String, payloadBytes: UnsafeRawBufferPointer, attachment: MessageAttachment?, sender: Sender, droppedBefore: UInt64,
        afterReconnect: Bool, retainedAt: Date?
    ) {
        self.init(
            topic: topic, payload: attachment?.mappedPayload == nil ? [UInt8](payloadBytes) : [], sender: sender,
            droppedBefore: droppedBefore, afterReconnect: afterReconnect, retainedAt: retainedAt)
        self.attachment = attachment
    }

    /// The time a RETAINED frame carries (ns since the epoch) as a date; 0 means not retained.
    static func date(retainedNanoseconds: UInt64) -> Date? {
        retainedNanoseconds == 0 ? nil : Date(timeIntervalSince1970: Double(retainedNanoseconds) / 1e9)
    }

    /// The payload as text, or nil if it is not valid UTF-8.
    public var string: String? { withPayloadBytes { String(validating: $0, as: UTF8.self) } }

    /// Decodes the payload as JSON.
    ///
    /// - Throws: the decoder's `DecodingError` if the payload is not JSON for `T`.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: withPayloadBytes { Data($0) })
    }

    /// Calls `body` with the payload's bytes in place: no copy, whether the payload came in
    /// the frame or as a sealed memfd (then read straight from the shared pages). The pointer
    /// is valid only during the call.
    @inlinable
    public func withPayloadBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        if let mappedPayload = attachment?.mappedPayload { return try body(mappedPayload.bytes) }
        return try inlinePayload.withUnsafeBufferPointer { (buffer) throws(Failure) -> Result in try body(UnsafeRawBufferPointer(buffer)) }
    }

    /// The payload's size in bytes (without copying a mapped payload).
    @inlinable
    public var payloadCount: Int { attachment?.mappedPayload?.bytes.count ?? inlinePayload.count }

    /// Whether the payload came as a sealed memfd and is read from a read-only mapping of it
    /// (its size then costs nothing to receive; see ``SealedPayload``).
    @inlinable
    public var isMappedPayload: Bool { attachment?.mappedPayload != nil }

    /// The file descriptors passed with the message and not yet taken
    /// (``Bus/publish(_:_:fileDescriptors:)``): this process's own descriptors for the
    /// sender's open files, close-on-exec, in the order the sender passed them.
    ///
    /// They belong to the message: they stay open while any copy of it exists and are closed
    /// with the last, unless taken with ``takeFileDescriptors()``. Use them while holding the
    /// message; take them to keep them.
    public var fileDescriptors: [FileDescriptor] { attachment?.fileDescriptors ?? [] }

    /// Takes the descriptors passed with the message: from now on the caller owns them and
    /// must close them; the message (and every copy of it) no longer has them. Empty if there
    /// were none or they were already taken.
    public func takeFileDescriptors() -> [FileDescriptor] {
        attachment?.take().map(FileDescriptor.init(rawValue:)) ?? []
    }

    /// How many descriptors the sender passed that this bus did not receive: it does not
    /// accept descriptors (``BusOptions/acceptsFileDescriptors``), or could not duplicate
    /// them for a second subscription. 0 normally.
    public var withheldFileDescriptors: Int { attachment?.withheld ?? 0 }

    /// Why the payload is missing, when the sender passed it as a sealed memfd that this bus
    /// did not receive (it does not accept descriptors) or would not trust (not sealed, so
    /// its bytes could change under the reader); nil otherwise.
    public var payloadRejection: String? { attachment?.payloadRejection }
}
