/// HELLO: the first frame a client sends.
public struct Hello: Equatable, Sendable {
    /// Lowest protocol version the client speaks.
    public var minVersion: UInt16
    /// Highest protocol version the client speaks.
    public var maxVersion: UInt16
    /// What the broker should do when this client falls behind; nil leaves the choice to the
    /// broker's configured default (encoded as 0xFF). WELCOME reports the policy in force.
    public var slowConsumerPolicy: SlowConsumerPolicy?
    /// Output limit the client asks for in bytes; 0 takes the broker's default. The broker
    /// may lower it to its own maximum; WELCOME reports the value in force.
    public var outputLimit: UInt32
    /// Capability bits; none are defined in version 1 and the broker ignores unknown ones.
    public var capabilities: UInt32
    /// A human-readable client name for logs and introspection (at most 255 UTF-8 bytes).
    public var clientName: String

    /// Creates a HELLO body.
    public init(
        minVersion: UInt16 = ProtocolVersion.minimum, maxVersion: UInt16 = ProtocolVersion.maximum,
        slowConsumerPolicy: SlowConsumerPolicy? = nil, outputLimit: UInt32 = 0, capabilities: UInt32 = 0,
        clientName: String
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.slowConsumerPolicy = slowConsumerPolicy
        self.outputLimit = outputLimit
        self.capabilities = capabilities
        self.clientName = clientName
    }
}

/// WELCOME: the broker's answer to an acceptable HELLO.
public struct Welcome: Equatable, Sendable {
    /// The protocol version chosen for the session.
    public var version: UInt16
    /// The id the broker gave this connection; it stamps every message the client publishes.
    public var peerID: UInt64
    /// The client's own credentials as the kernel reported them to the broker.
    public var credentials: PeerCredentials
    /// The broker's process id.
    public var brokerPID: UInt32
    /// The broker's user id.
    public var brokerUID: UInt32
    /// Largest frame, header included, the broker accepts from this client.
    public var maxFrameSize: UInt32
    /// Longest topic or filter in bytes.
    public var maxTopicLength: UInt32
    /// Most subscriptions this connection may hold.
    public var maxSubscriptions: UInt32
    /// Output limit in force for this connection, in bytes.
    public var outputLimit: UInt32
    /// Slow-consumer policy in force for this connection.
    public var slowConsumerPolicy: SlowConsumerPolicy
    /// Broker software name and version, e.g. `heraldd 0.1.0`.
    public var serverName: String
    /// The client's HELLO ``Capabilities`` that the broker supports: the features in use
    /// for this session (a u16 on the wire).
    public var capabilities: UInt16

    /// Creates a WELCOME body.
    public init(
        version: UInt16, peerID: UInt64, credentials: PeerCredentials, brokerPID: UInt32, brokerUID: UInt32,
        maxFrameSize: UInt32, maxTopicLength: UInt32, maxSubscriptions: UInt32, outputLimit: UInt32,
        slowConsumerPolicy: SlowConsumerPolicy, serverName: String, capabilities: UInt16 = 0
    ) {
        self.capabilities = capabilities
        self.version = version
        self.peerID = peerID
        self.credentials = credentials
        self.brokerPID = brokerPID
        self.brokerUID = brokerUID
        self.maxFrameSize = maxFrameSize
        self.maxTopicLength = maxTopicLength
        self.maxSubscriptions = maxSubscriptions
        self.outputLimit = outputLimit
        self.slowConsumerPolicy = slowConsumerPolicy
        self.serverName = serverName
    }
}

/// Kernel-verified identity of a process (from SO_PEERCRED).
public struct PeerCredentials: Equatable, Hashable, Sendable {
    /// Process id.
    public var pid: UInt32
    /// User id.
    public var uid: UInt32
    /// Primary group id.
    public var gid: UInt32

    /// Creates credentials.
    @inlinable
    public init(pid: UInt32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }
}

/// ERROR: a failed request, or the reason a connection is being closed.
public struct ErrorFrame: Equatable, Sendable {
    /// Raw error code; see ``ErrorCode``. Kept raw so a client can report codes from newer brokers.
    public var code: UInt16
    /// Whether the broker closes the connection after this frame.
    public var isFatal: Bool
    /// The request the error answers: a SUBSCRIBE/UNSUBSCRIBE request id, the ordinal of the
    /// offending PUBLISH on this connection (1 for the first), or 0 when none applies.
    public var requestID: UInt32
    /// A human-readable explanation (at most 1024 UTF-8 bytes).
    public var message: String

    /// Creates an ERROR body.
    public init(code: UInt16, isFatal: Bool, requestID: UInt32 = 0, message: String) {
        self.code = code
        self.isFatal = isFatal
        self.requestID = requestID
        self.message = message
    }

    /// Creates an ERROR body from a known code; fatality follows the code.
    public init(_ code: ErrorCode, requestID: UInt32 = 0, message: String) {
        self.init(code: code.rawValue, isFatal: code.isFatal, requestID: requestID, message: message)
    }

    /// The code as a known ``ErrorCode``, or nil for a code this build does not know.
    public var knownCode: ErrorCode? { ErrorCode(rawValue: code) }
}

/// GOODBYE: an orderly end of the session, from either side.
public struct Goodbye: Equatable, Sendable {
    /// 0 for a normal close; otherwise an ``ErrorCode`` raw value such as `brokerShuttingDown`.
    public var reason: UInt16
    /// A human-readable explanation.
    public var message: String

    /// Creates a GOODBYE body.
    public init(reason: UInt16 = 0, message: String = "") {
        self.reason = reason
        self.message = message
    }
}

/// SUBSCRIBE: adds a subscription under a client-chosen id.
public struct Subscribe: Equatable, Sendable {
    /// Correlates the broker's OK or ERROR.
    public var requestID: UInt32
    /// The client's name for this subscription, unique among its active ones.
    public var subscriptionID: UInt32
    /// The topic filter.
    public var filter: String
    /// A responder subscription (flag 0x01): it receives the REQUESTs on matching topics as
    /// CALL frames, and no MESSAGE frames.
    public var responder: Bool
    /// A monitor subscription (flag 0x02): MESSAGE frames as usual, and MONITORED copies of
    /// the requests, replies and direct messages on matching topics.
    public var monitor: Bool

    /// Creates a SUBSCRIBE body.
    public init(requestID: UInt32, subscriptionID: UInt32, filter: String, responder: Bool = false, monitor: Bool = false) {
        self.requestID = requestID
        self.subscriptionID = subscriptionID
        self.filter = filter
        self.responder = responder
        self.monitor = monitor
    }
}

/// UNSUBSCRIBE: removes a subscription by id.
public struct Unsubscribe: Equatable, Sendable {
    /// Correlates the broker's OK or ERROR.
    public var requestID: UInt32
    /// The id given at SUBSCRIBE.
    public var subscriptionID: UInt32

    /// Creates an UNSUBSCRIBE body.
    public init(requestID: UInt32, subscriptionID: UInt32) {
        self.requestID = requestID
        self.subscriptionID = subscriptionID
    }
}

/// PUBLISH: a message from a client. The topic is kept as bytes because validating it is
/// the broker's job (an invalid topic is an ERROR, not a malformed frame).
public struct Publish: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// Topic bytes (UTF-8 when valid).
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]
    /// Whether the broker keeps it as the topic's retained message (flag 0x01).
    public var retain: Bool

    /// Creates a PUBLISH body.
    public init(topic: [UInt8], payload: [UInt8], retain: Bool = false) {
        self.topic = topic
        self.payload = payload
        self.retain = retain
    }

    /// Creates a PUBLISH body from a topic string.
    public init(topic: String, payload: [UInt8], retain: Bool = false) {
        self.init(topic: Array(topic.utf8), payload: payload, retain: retain)
    }
}

/// MESSAGE: a delivery, stamped by the broker with the sender's identity.
public struct Delivery: Equatable, Sendable {
    /// The file descriptors passed with this frame (flag 0x80, PROTOCOL.md §4.22); nil for none.
    public var descriptors: DescriptorBlock? = nil
    /// The publishing connection's peer id.
    public var senderID: UInt64
    /// The publisher's kernel-verified credentials.
    public var sender: PeerCredentials
    /// Topic bytes (valid UTF-8: the broker only routes valid topics).
    public var topic: [UInt8]
    /// Opaque payload.
    public var payload: [UInt8]

    /// Creates a MESSAGE body.
    public init(senderID: UInt64, sender: PeerCredentials, topic: [UInt8], payload: [UInt8]) {
        self.senderID = senderID
        self.sender = sender
        self.topic = topic
        self.payload = payload
    }
}

/// RETAINED: a topic's retained message, handed to one new subscription (PROTOCOL.md §4.13).
public struct RetainedDelivery: Equatable, Sendable {
    /// The subscription this is for: the one whose SUBSCRIBE was just answered OK.
    public var subscriptionID: UInt32
    /// When the broker stored the message: nanoseconds since the Unix epoch (its wall clock).
    public var retainedAt: UInt64
    /// The publishing connection's peer id (it may be gone by now).
    public var senderID: UInt64
    /// The publisher's kernel-verified credentials.
    public var sender: PeerCredentials
    /// Topic bytes (valid UTF-8).
    public var topic: [UInt8]
    /// Opaque payload, never empty (an empty retained PUBLISH clears the topic).
    public var payload: [UInt8]

    /// Creates a RETAINED body.
    public init(subscriptionID: UInt32, retainedAt: UInt64, senderID: UInt64, sender: PeerCredentials, topic: [UInt8], payload: [UInt8]) {
        self.subscriptionID = subscriptionID
        self.retainedAt = retainedAt
        self.senderID = senderID
        self.sender = sender
        self.topic = topic
        self.payload = payload
    }
}

/// DROPPED: how many messages the broker dropped for this client since the previous notice.
public struct DropNotice: Equatable, Sendable {
    /// Messages dropped.
    public var messages: UInt64
    /// Frame bytes those messages would have taken.
    public var bytes: UInt64

    /// Creates a DROPPED body.
    public init(messages: UInt64, bytes: UInt64) {
        self.messages = messages
        self.bytes = bytes
    }
}

/// Any frame of protocol version 1, decoded.
public enum Frame: Equatable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case error(ErrorFrame)
    case ping(token: UInt64)
    case pong(token: UInt64)
    case goodbye(Goodbye)
    case ok(requestID: UInt32)
    case subscribe(Subscribe)
    case unsubscribe(Unsubscribe)
    case publish(Publish)
    case message(Delivery)
    case dropped(DropNotice)
    case retained(RetainedDelivery)
    case request(Request)
    case call(Call)
    case reply(Reply)
    case response(Response)
    case send(Send)
    /// DIRECT: laid out exactly as MESSAGE (sender block, topic, payload).
    case direct(Delivery)
    case will(Will)
    case monitored(Monitored)

    /// The frame's type byte.
    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .welcome: .welcome
        case .error: .error
        case .ping: .ping
        case .pong: .pong
        case .goodbye: .goodbye
        case .ok: .ok
        case .subscribe: .subscribe
        case .unsubscribe: .unsubscribe
        case .publish: .publish
        case .message: .message
        case .dropped: .dropped
        case .retained: .retained
        case .request: .request
        case .call: .call
        case .reply: .reply
        case .response: .response
        case .send: .send
        case .direct: .direct
        case .will: .will
        case .monitored: .monitored
        }
    }
}
