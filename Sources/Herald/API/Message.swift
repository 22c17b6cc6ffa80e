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
    public var payload: [UInt8]
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

    /// Creates a message (useful for tests and for code that forwards messages).
    public init(
        topic: String, payload: [UInt8], sender: Sender, droppedBefore: UInt64 = 0, afterReconnect: Bool = false,
        retainedAt: Date? = nil
    ) {
        self.topic = topic
        self.payload = payload
        self.sender = sender
        self.droppedBefore = droppedBefore
        self.afterReconnect = afterReconnect
        self.retainedAt = retainedAt
    }

    /// The time a RETAINED frame carries (ns since the epoch) as a date; 0 means not retained.
    static func date(retainedNanoseconds: UInt64) -> Date? {
        retainedNanoseconds == 0 ? nil : Date(timeIntervalSince1970: Double(retainedNanoseconds) / 1e9)
    }

    /// The payload as text, or nil if it is not valid UTF-8.
    public var string: String? { String(validating: payload, as: UTF8.self) }

    /// Decodes the payload as JSON.
    ///
    /// - Throws: the decoder's `DecodingError` if the payload is not JSON for `T`.
    public func decode<T: Decodable>(_ type: T.Type, decoder: JSONDecoder = JSONDecoder()) throws -> T {
        try decoder.decode(type, from: Data(payload))
    }
}
