/// The one-byte type of a frame (offset 4 of the header).
public enum FrameType: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// Client → broker: opens the session.
    case hello = 0x01
    /// Broker → client: accepts the session.
    case welcome = 0x02
    /// Broker → client: a request failed or the session is being closed.
    case error = 0x03
    /// Either direction: asks for a PONG with the same token.
    case ping = 0x04
    /// Either direction: answers a PING.
    case pong = 0x05
    /// Either direction: orderly end of the session.
    case goodbye = 0x06
    /// Broker → client: a request identified by its request id succeeded.
    case ok = 0x07
    /// Client → broker: adds a subscription.
    case subscribe = 0x08
    /// Client → broker: removes a subscription.
    case unsubscribe = 0x09
    /// Client → broker: a message for every matching subscriber.
    case publish = 0x10
    /// Broker → client: a delivered message, stamped with its sender.
    case message = 0x11
    /// Broker → client: messages were dropped because this client did not keep up.
    case dropped = 0x12
    /// Broker → client: a topic's retained message, for the subscription that was just added.
    case retained = 0x13
    /// Client → broker: a request for one responder to answer.
    case request = 0x14
    /// Broker → client: a request for this responder to answer, stamped with its requester.
    case call = 0x15
    /// Client → broker: a responder's answer to a CALL.
    case reply = 0x16
    /// Broker → client: the answer to this client's REQUEST, stamped with its responder.
    case response = 0x17
    /// Client → broker: a message for one peer, by its peer id.
    case send = 0x18
    /// Broker → client: a message sent to this client alone, stamped with its sender.
    case direct = 0x19
    /// Client → broker: the message the broker publishes for this client if it goes away
    /// without GOODBYE (its last will); answered OK or ERROR.
    case will = 0x1A
    /// Broker → client: a copy, for a monitor subscription, of a request, reply or direct
    /// message another peer sent.
    case monitored = 0x1B

    /// Whether clients send this type (HELLO, PING, PONG, GOODBYE, SUBSCRIBE, UNSUBSCRIBE,
    /// PUBLISH, REQUEST, REPLY, SEND, WILL). A broker that receives any other defined type answers
    /// `unexpected_frame`.
    public var isSentByClients: Bool {
        switch self {
        case .hello, .ping, .pong, .goodbye, .subscribe, .unsubscribe, .publish, .request, .reply, .send, .will: true
        case .welcome, .error, .ok, .message, .dropped, .retained, .call, .response, .direct, .monitored: false
        }
    }

    /// Whether `aux` holds the topic length (PUBLISH, MESSAGE, RETAINED, REQUEST, CALL, SEND,
    /// DIRECT, WILL, MONITORED); it must be 0 in every other type.
    public var carriesTopicLength: Bool {
        switch self {
        case .publish, .message, .retained, .request, .call, .send, .direct, .will, .monitored: true
        default: false
        }
    }

    public var description: String {
        switch self {
        case .hello: "HELLO"
        case .welcome: "WELCOME"
        case .error: "ERROR"
        case .ping: "PING"
        case .pong: "PONG"
        case .goodbye: "GOODBYE"
        case .ok: "OK"
        case .subscribe: "SUBSCRIBE"
        case .unsubscribe: "UNSUBSCRIBE"
        case .publish: "PUBLISH"
        case .message: "MESSAGE"
        case .dropped: "DROPPED"
        case .retained: "RETAINED"
        case .request: "REQUEST"
        case .call: "CALL"
        case .reply: "REPLY"
        case .response: "RESPONSE"
        case .send: "SEND"
        case .direct: "DIRECT"
        case .will: "WILL"
        case .monitored: "MONITORED"
        }
    }
}
