// The frames about peers rather than topics: direct messages, last wills, and the copies
// a monitor receives (PROTOCOL.md §4.18–§4.21).

/// SEND: a message for one peer, named by its peer id (PROTOCOL.md §4.18). The topic is kept
/// as bytes, as PUBLISH's is: validating it is the broker's job.
public struct Send: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// Chosen by the sender; an ERROR about this SEND carries it (there is no reply on success).
    public var requestID: UInt32
    /// The peer id (from its WELCOME, or a message it sent) of the connection to deliver to.
    public var target: UInt64
    /// Topic bytes (UTF-8 when valid): what the message is about.
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]

    /// Creates a SEND body.
    public init(requestID: UInt32, target: UInt64, topic: [UInt8], payload: [UInt8]) {
        self.requestID = requestID
        self.target = target
        self.topic = topic
        self.payload = payload
    }

    /// Creates a SEND body from a topic string.
    public init(requestID: UInt32, target: UInt64, topic: String, payload: [UInt8]) {
        self.init(requestID: requestID, target: target, topic: Array(topic.utf8), payload: payload)
    }
}

/// WILL: the message the broker publishes on this client's behalf if the connection ends
/// without GOODBYE (PROTOCOL.md §4.20). An empty topic with an empty payload clears it.
public struct Will: Equatable, Sendable {
    /// Correlates the broker's OK or ERROR.
    public var requestID: UInt32
    /// Topic bytes (UTF-8 when valid); empty to clear the will.
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]
    /// Whether the will is published retained (flag 0x01).
    public var retain: Bool

    /// Creates a WILL body.
    public init(requestID: UInt32, topic: [UInt8], payload: [UInt8], retain: Bool = false) {
        self.requestID = requestID
        self.topic = topic
        self.payload = payload
        self.retain = retain
    }

    /// Creates a WILL body from a topic string.
    public init(requestID: UInt32, topic: String, payload: [UInt8], retain: Bool = false) {
        self.init(requestID: requestID, topic: Array(topic.utf8), payload: payload, retain: retain)
    }
}

/// MONITORED: a copy of a request, reply or direct message, for a monitor subscription
/// (PROTOCOL.md §4.21).
public struct Monitored: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// What was copied.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// A REQUEST, as handed to its responder.
        case request = 1
        /// A REPLY, as handed to its requester.
        case reply = 2
        /// A SEND, as delivered.
        case direct = 3
    }

    /// Who sent it: the requester, the responder, or the sender of the direct message.
    public var senderID: UInt64
    public var sender: PeerCredentials
    public var kind: Kind
    /// The monitor subscription this copy is for.
    public var subscriptionID: UInt32
    /// Where it went: the responder (request), the requester (reply), the receiver (direct).
    public var target: UInt64
    /// The call id that ties a request to its reply (0 for a direct message).
    public var callID: UInt32
    /// The reply's status (0 otherwise).
    public var status: UInt32
    /// The topic (empty for a reply: its request's copy has it).
    public var topic: [UInt8]
    public var payload: [UInt8]

    /// Creates a MONITORED body.
    public init(
        senderID: UInt64, sender: PeerCredentials, kind: Kind, subscriptionID: UInt32, target: UInt64, callID: UInt32, status: UInt32,
        topic: [UInt8], payload: [UInt8]
    ) {
        self.senderID = senderID
        self.sender = sender
        self.kind = kind
        self.subscriptionID = subscriptionID
        self.target = target
        self.callID = callID
        self.status = status
        self.topic = topic
        self.payload = payload
    }
}
