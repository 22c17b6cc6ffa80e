import HeraldProtocol
import Testing

/// Encoder behaviour that round trips cannot show: limits on text fields and the fatal flag.
@Suite struct FrameEncoderTests {
    /// The text field of a decoded frame that carries one.
    private static func text(of frame: Frame) -> String? {
        switch frame {
        case .hello(let hello): hello.clientName
        case .welcome(let welcome): welcome.serverName
        case .error(let error): error.message
        case .goodbye(let goodbye): goodbye.message
        default: nil
        }
    }

    /// Over-long names and messages are cut to the limit at a character boundary, so the
    /// frame stays decodable. 'é' is 2 bytes and '🎉' 4; each case puts the limit inside a scalar.
    @Test(arguments: [
        (Frame.hello(Hello(clientName: String(repeating: "é", count: 200))), ProtocolLimits.maxClientNameLength),
        (
            Frame.welcome(
                Welcome(
                    version: 1, peerID: 1, credentials: PeerCredentials(pid: 1, uid: 1, gid: 1), brokerPID: 1,
                    brokerUID: 1, maxFrameSize: 1, maxTopicLength: 1, maxSubscriptions: 1, outputLimit: 1,
                    slowConsumerPolicy: .drop, serverName: "ab" + String(repeating: "🎉", count: 100))),
            ProtocolLimits.maxClientNameLength
        ),
        (
            Frame.error(ErrorFrame(.invalidTopic, message: "abc" + String(repeating: "🎉", count: 300))),
            ProtocolLimits.maxErrorMessageLength
        ),
        (
            Frame.goodbye(Goodbye(message: "a" + String(repeating: "é", count: 600))),
            ProtocolLimits.maxErrorMessageLength
        ),
    ])
    func longTextIsTruncatedAtACharacterBoundary(frame: Frame, limit: Int) throws {
        let original = try #require(Self.text(of: frame))
        let decoded = try #require(try FrameDecoder.decode(FrameEncoder.encode(frame))).frame
        let text = try #require(Self.text(of: decoded))
        #expect(original.utf8.count > limit)
        #expect(text.utf8.count < limit && text.utf8.count > limit - 4)
        #expect(original.hasPrefix(text))
    }

    @Test(arguments: ErrorCode.allCases)
    func errorFramesCarryTheFatalFlagOfTheirCode(code: ErrorCode) throws {
        let bytes = FrameEncoder.encode(.error(ErrorFrame(code, requestID: 7, message: "x")))
        #expect(bytes[5] == (code.isFatal ? FrameFlags.fatal : 0))
        let decoded = try #require(try FrameDecoder.decode(bytes)).frame
        #expect(decoded == .error(ErrorFrame(code: code.rawValue, isFatal: code.isFatal, requestID: 7, message: "x")))
    }

    @Test func helloStartsWithTheMagicBytes() {
        let bytes = FrameEncoder.encode(.hello(Hello(clientName: "")))
        #expect(Array(bytes[8..<12]) == Array("HRLD".utf8))
    }
}
