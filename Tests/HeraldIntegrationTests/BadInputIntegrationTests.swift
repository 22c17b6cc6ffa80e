import Foundation
import HeraldProtocol
import Testing

/// Every class of bad input, written as raw bytes to a real heraldd: the offender gets a
/// specific ERROR (and is closed when the error is fatal); the broker keeps running and a
/// bystander subscriber keeps receiving.
@Suite("heraldd: bad input", .timeLimit(.minutes(2)))
struct BadInputIntegrationTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let name: String
        let handshake: Bool
        let bytes: [UInt8]
        let code: ErrorCode
        var testDescription: String { name }
    }

    static func header(_ length: UInt32, _ type: UInt8, flags: UInt8 = 0, aux: UInt16 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.withUnsafeMutableBytes { FrameHeader(bodyLength: length, type: type, flags: flags, aux: aux).store(to: $0.baseAddress!) }
        return bytes
    }

    static let fatalCases: [Case] = [
        Case(name: "malformed PUBLISH (topic longer than body)", handshake: true,
            bytes: header(3, FrameType.publish.rawValue, aux: 9) + [1, 2, 3], code: .malformedFrame),
        Case(name: "truncated UNSUBSCRIBE body", handshake: true, bytes: header(2, FrameType.unsubscribe.rawValue) + [1, 2],
            code: .malformedFrame),
        Case(name: "unknown frame type", handshake: true, bytes: header(0, 0x6E), code: .unknownFrameType),
        Case(name: "oversized frame (header only)", handshake: true, bytes: header(64 << 20, FrameType.publish.rawValue, aux: 1),
            code: .frameTooLarge),
        Case(name: "PUBLISH before HELLO", handshake: false,
            bytes: FrameEncoder.encode(.publish(Publish(topic: "a", payload: [1]))), code: .handshakeRequired),
        Case(name: "HTTP request instead of HELLO", handshake: false, bytes: Array("GET / HTTP/1.1\r\n\r\n".utf8),
            code: .handshakeRequired),
        Case(name: "HELLO without magic", handshake: false,
            bytes: { var b = FrameEncoder.encode(.hello(Hello(clientName: "x"))); b[8] = 0; return b }(), code: .notHerald),
        Case(name: "second HELLO", handshake: true, bytes: FrameEncoder.encode(.hello(Hello(clientName: "again"))),
            code: .unexpectedFrame),
        Case(name: "client sends a MESSAGE frame", handshake: true,
            bytes: FrameEncoder.encode(.message(Delivery(senderID: 7, sender: PeerCredentials(pid: 1, uid: 0, gid: 0), topic: Array("a".utf8), payload: []))),
            code: .unexpectedFrame),
    ]

    static let requestCases: [Case] = [
        Case(name: "empty level in topic", handshake: true, bytes: FrameEncoder.encode(.publish(Publish(topic: "a//b", payload: [1]))),
            code: .invalidTopic),
        Case(name: "wildcard in topic", handshake: true, bytes: FrameEncoder.encode(.publish(Publish(topic: "a/+", payload: [1]))),
            code: .invalidTopic),
        Case(name: "topic not UTF-8", handshake: true, bytes: FrameEncoder.encode(.publish(Publish(topic: [0x61, 0xC3], payload: [1]))),
            code: .invalidTopic),
        Case(name: "reserved $ topic", handshake: true, bytes: FrameEncoder.encode(.publish(Publish(topic: "$SYS/x", payload: [1]))),
            code: .reservedTopic),
        Case(name: "topic too long", handshake: true,
            bytes: FrameEncoder.encode(.publish(Publish(topic: String(repeating: "t", count: 2000), payload: [1]))), code: .topicTooLong),
        Case(name: "'#' not last in filter", handshake: true,
            bytes: FrameEncoder.encode(.subscribe(Subscribe(requestID: 5, subscriptionID: 5, filter: "a/#/b"))), code: .invalidFilter),
        Case(name: "unknown subscription", handshake: true,
            bytes: FrameEncoder.encode(.unsubscribe(Unsubscribe(requestID: 6, subscriptionID: 77))), code: .unknownSubscription),
    ]

    /// A broker with a bystander that subscribes to everything and a publisher that checks it still gets through.
    final class Scene: @unchecked Sendable {
        let broker: BrokerProcess
        let bystander: RawConnection
        let publisher: RawConnection

        init() async throws {
            broker = try await BrokerProcess()
            (bystander, _) = try RawConnection.handshake(broker.address, name: "bystander")
            try bystander.subscribe("#", id: 1)
            (publisher, _) = try RawConnection.handshake(broker.address, name: "publisher")
        }

        /// The bystander still receives a fresh message and the broker is alive.
        func expectStillRouting(_ marker: UInt8) throws {
            publisher.send(.publish(Publish(topic: "still/routing", payload: [marker])))
            try publisher.sync()
            // Earlier messages may arrive first; the marker must follow.
            var payload: [UInt8]?
            while payload != [marker] {
                guard let frame = try bystander.readFrame() else { break }
                payload = frame.messagePayload ?? payload
            }
            #expect(payload == [marker])
            #expect(broker.process.isRunning)
        }
    }

    @Test(arguments: fatalCases)
    func fatalInputClosesOnlyTheOffender(_ input: Case) async throws {
        let scene = try await Scene()
        let offender = input.handshake ? try RawConnection.handshake(scene.broker.address).0 : try RawConnection(scene.broker.address)
        offender.send(input.bytes)
        let frames = try offender.readUntilClosed()
        let error = frames.compactMap(\.errorBody).first
        #expect(error?.knownCode == input.code, "got \(frames)")
        #expect(error?.isFatal == true)
        try scene.expectStillRouting(1)
        #expect(scene.broker.log.contains("closing connection"), "the broker logs the violation")
    }

    @Test(arguments: requestCases)
    func invalidRequestIsRefusedAndTheSessionGoesOn(_ input: Case) async throws {
        let scene = try await Scene()
        let (offender, _) = try RawConnection.handshake(scene.broker.address)
        offender.send(input.bytes)
        let error = try offender.readFrame()?.errorBody
        #expect(error?.knownCode == input.code)
        #expect(error?.isFatal == false)
        // The same connection still works.
        offender.send(.publish(Publish(topic: "after/error", payload: [2])))
        try offender.sync()
        try scene.expectStillRouting(3)
        #expect(scene.broker.log.contains("request refused"))
    }

    @Test func abruptDisconnectMidFrameHarmsNobody() async throws {
        let scene = try await Scene()
        let (offender, _) = try RawConnection.handshake(scene.broker.address)
        let frame = FrameEncoder.encode(.publish(Publish(topic: "half/sent", payload: [UInt8](repeating: 1, count: 1000))))
        offender.send(Array(frame.prefix(500)))
        offender.closeNow()
        try scene.expectStillRouting(4)
    }
}
