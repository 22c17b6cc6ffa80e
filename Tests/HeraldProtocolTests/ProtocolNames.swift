import HeraldProtocol
import HeraldTestSupport

/// The names the vector files and PROTOCOL.md use for protocol values. Written out by hand
/// (exhaustive switches) so adding a case to the library forces the spec names to be decided.
enum ProtocolNames {
    static func name(of type: FrameType) -> String {
        switch type {
        case .hello: "hello"
        case .welcome: "welcome"
        case .error: "error"
        case .ping: "ping"
        case .pong: "pong"
        case .goodbye: "goodbye"
        case .ok: "ok"
        case .subscribe: "subscribe"
        case .unsubscribe: "unsubscribe"
        case .publish: "publish"
        case .message: "message"
        case .dropped: "dropped"
        case .retained: "retained"
        case .request: "request"
        case .call: "call"
        case .reply: "reply"
        case .response: "response"
        case .send: "send"
        case .direct: "direct"
        case .will: "will"
        case .monitored: "monitored"
        }
    }

    static func frameType(named name: String) -> FrameType? {
        FrameType.allCases.first { self.name(of: $0) == name }
    }

    static func name(of policy: SlowConsumerPolicy) -> String {
        switch policy {
        case .drop: "drop"
        case .disconnect: "disconnect"
        case .backpressure: "backpressure"
        }
    }

    /// HELLO's "let the broker choose" (nil in ``Hello``, 0xFF on the wire).
    static let brokerDefaultPolicy = "broker_default"

    static func policy(named name: String) -> SlowConsumerPolicy? {
        SlowConsumerPolicy.allCases.first { self.name(of: $0) == name }
    }

    static func name(of code: ErrorCode) -> String { ErrorCodeNames.name(of: code) }

    /// Every decoding error class a vector may expect.
    static let decodingErrorNames: Set<String> = [
        "unknown_type", "frame_too_large", "truncated_body", "trailing_bytes", "length_out_of_range",
        "invalid_utf8", "invalid_value", "unsupported_flags",
    ]

    /// The vector name of a decoding error, and the details a vector may pin down.
    static func describe(_ error: FrameDecodingError) -> (name: String, detail: [String: JSONValue]) {
        switch error {
        case .unknownType(let type): ("unknown_type", ["type": .integer(Int64(type))])
        case .frameTooLarge(let length, let maximum):
            ("frame_too_large", ["length": .integer(Int64(length)), "maximum": .integer(Int64(maximum))])
        case .truncatedBody: ("truncated_body", [:])
        case .trailingBytes: ("trailing_bytes", [:])
        case .lengthOutOfRange: ("length_out_of_range", [:])
        case .invalidUTF8: ("invalid_utf8", [:])
        // The text is for humans and not part of the protocol.
        case .invalidValue: ("invalid_value", [:])
        case .unsupportedFlags(let flags): ("unsupported_flags", ["flags": .integer(Int64(flags))])
        }
    }

    static func name(of error: TopicError) -> String {
        switch error {
        case .empty: "empty"
        case .tooLong: "too_long"
        case .invalidUTF8: "invalid_utf8"
        case .emptyLevel: "empty_level"
        case .wildcardInTopic: "wildcard_in_topic"
        case .wildcardNotAlone: "wildcard_not_alone"
        case .multiLevelWildcardNotLast: "multi_level_wildcard_not_last"
        case .nulCharacter: "nul_character"
        case .reserved: "reserved"
        }
    }
}
