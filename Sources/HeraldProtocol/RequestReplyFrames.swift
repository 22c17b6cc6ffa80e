// The frames of request/reply (PROTOCOL.md §4.14–§4.17, §6.4).

/// REQUEST: a question for one responder (PROTOCOL.md §4.14). The topic is kept as bytes,
/// as PUBLISH's is: validating it is the broker's job.
public struct Request: Equatable, Sendable {
    /// Chosen by the requester, unique among its requests still waiting; the RESPONSE or
    /// ERROR carries it.
    public var requestID: UInt32
    /// Milliseconds after which the broker gives up and answers `request_timeout`; 0 for none.
    public var timeoutMilliseconds: UInt32
    /// Topic bytes (UTF-8 when valid).
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]

    /// Creates a REQUEST body.
    public init(requestID: UInt32, timeoutMilliseconds: UInt32, topic: [UInt8], payload: [UInt8]) {
        self.requestID = requestID
        self.timeoutMilliseconds = timeoutMilliseconds
        self.topic = topic
        self.payload = payload
    }

    /// Creates a REQUEST body from a topic string.
    public init(requestID: UInt32, timeoutMilliseconds: UInt32, topic: String, payload: [UInt8]) {
        self.init(requestID: requestID, timeoutMilliseconds: timeoutMilliseconds, topic: Array(topic.utf8), payload: payload)
    }
}

/// CALL: a REQUEST handed to the responder chosen for it, stamped with the requester's
/// identity (PROTOCOL.md §4.15).
public struct Call: Equatable, Sendable {
    /// The requesting connection's peer id.
    public var senderID: UInt64
    /// The requester's kernel-verified credentials.
    public var sender: PeerCredentials
    /// The broker's number for this call on this connection (never 0): the REPLY names it.
    public var callID: UInt32
    /// The responder subscription the request matched.
    public var subscriptionID: UInt32
    /// Topic bytes (valid UTF-8).
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]

    /// Creates a CALL body.
    public init(senderID: UInt64, sender: PeerCredentials, callID: UInt32, subscriptionID: UInt32, topic: [UInt8], payload: [UInt8]) {
        self.senderID = senderID
        self.sender = sender
        self.callID = callID
        self.subscriptionID = subscriptionID
        self.topic = topic
        self.payload = payload
    }
}

/// REPLY: a responder's answer to a CALL (PROTOCOL.md §4.16).
public struct Reply: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// The CALL's `call_id`.
    public var callID: UInt32
    /// 0: `payload` is the answer. Anything else: the responder failed the request with
    /// this application-defined code, and `payload` says why (UTF-8 text).
    public var status: UInt32
    /// The answer, or the failure's explanation.
    public var payload: [UInt8]

    /// Creates a REPLY body.
    public init(callID: UInt32, status: UInt32 = 0, payload: [UInt8]) {
        self.callID = callID
        self.status = status
        self.payload = payload
    }
}

/// RESPONSE: the answer to a REQUEST, stamped with the responder's identity (PROTOCOL.md §4.17).
public struct Response: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// The answering connection's peer id.
    public var senderID: UInt64
    /// The responder's kernel-verified credentials.
    public var sender: PeerCredentials
    /// The REQUEST's `request_id`.
    public var requestID: UInt32
    /// The REPLY's status: 0 for an answer, else the responder's failure code.
    public var status: UInt32
    /// The answer, or the failure's explanation.
    public var payload: [UInt8]

    /// Creates a RESPONSE body.
    public init(senderID: UInt64, sender: PeerCredentials, requestID: UInt32, status: UInt32 = 0, payload: [UInt8]) {
        self.senderID = senderID
        self.sender = sender
        self.requestID = requestID
        self.status = status
        self.payload = payload
    }
}
