import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Bad input")
struct BadInputTests {
    /// Sends `bytes` from a fresh active peer and returns the ERROR it got and whether it is closing.
    private func outcome(_ bytes: [UInt8], configure: (inout BrokerConfiguration) -> Void = { _ in }) -> (ErrorFrame?, Bool) {
        let harness = CoreHarness(configure: configure)
        let peer = harness.connect()
        let bystander = harness.connect()
        harness.subscribe(bystander, "#", id: 1)
        harness.send(peer, bytes)
        let error = CoreHarness.firstError(harness.drain(peer))
        // Other peers keep working after any bad input.
        let publisher = harness.connect()
        harness.publish(publisher, "still/working", [1])
        #expect(CoreHarness.payloads(harness.drain(bystander)).last == [1])
        return (error, peer.state == .closing)
    }

    private func header(length: UInt32, type: UInt8, flags: UInt8 = 0, aux: UInt16 = 0) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.withUnsafeMutableBytes { FrameHeader(bodyLength: length, type: type, flags: flags, aux: aux).store(to: $0.baseAddress!) }
        return bytes
    }

    @Test func unknownFrameTypeIsFatal() {
        let (error, closing) = outcome(header(length: 0, type: 0x7F))
        #expect(error?.knownCode == .unknownFrameType && error?.isFatal == true && closing)
    }

    @Test func oversizedFrameIsRefusedFromItsHeader() {
        // Only the header is sent: the broker must not wait for (or buffer) the body.
        let (error, closing) = outcome(header(length: 10_000_000, type: FrameType.publish.rawValue, aux: 1))
        #expect(error?.knownCode == .frameTooLarge && closing)
        let (controlError, _) = outcome(header(length: 2 << 20, type: FrameType.subscribe.rawValue))
        #expect(controlError?.knownCode == .frameTooLarge)
    }

    @Test func topicLongerThanBodyIsMalformed() {
        let (error, closing) = outcome(header(length: 2, type: FrameType.publish.rawValue, aux: 5) + [1, 2])
        #expect(error?.knownCode == .malformedFrame && closing)
    }

    @Test func truncatedControlBodyIsMalformed() {
        let (error, closing) = outcome(header(length: 3, type: FrameType.unsubscribe.rawValue) + [1, 2, 3])
        #expect(error?.knownCode == .malformedFrame && closing)
        let (pingError, _) = outcome(header(length: 9, type: FrameType.ping.rawValue) + [UInt8](repeating: 0, count: 9))
        #expect(pingError?.knownCode == .malformedFrame)
    }

    @Test func brokerOnlyFramesFromClientsAreFatal() {
        for frame: Frame in [.ok(requestID: 1), .dropped(DropNotice(messages: 1, bytes: 1)),
            .message(Delivery(senderID: 1, sender: PeerCredentials(pid: 1, uid: 1, gid: 1), topic: Array("a".utf8), payload: []))]
        {
            let (error, closing) = outcome(FrameEncoder.encode(frame))
            #expect(error?.knownCode == .unexpectedFrame && closing, "\(frame.type)")
        }
    }

    @Test func invalidTopicsAreNonFatalAndNamed() {
        let cases: [(String, ErrorCode)] = [
            ("a//b", .invalidTopic), ("/a", .invalidTopic), ("a/", .invalidTopic), ("a/+", .invalidTopic),
            ("a/#", .invalidTopic), ("$SYS/x", .reservedTopic), ("", .invalidTopic),
        ]
        for (topic, code) in cases {
            let (error, closing) = outcome(FrameEncoder.encode(.publish(Publish(topic: topic, payload: [1]))))
            #expect(error?.knownCode == code, "topic '\(topic)'")
            #expect(error?.isFatal == false && !closing)
        }
        let (utf8Error, _) = outcome(FrameEncoder.encode(.publish(Publish(topic: [0x61, 0xFF], payload: []))))
        #expect(utf8Error?.knownCode == .invalidTopic)
        let (nulError, _) = outcome(FrameEncoder.encode(.publish(Publish(topic: [0x61, 0x00], payload: []))))
        #expect(nulError?.knownCode == .invalidTopic)
    }

    @Test func invalidFiltersAreNonFatal() {
        for filter in ["a/#/b", "a+/b", "", "a//b", "#a"] {
            let (error, closing) = outcome(FrameEncoder.encode(.subscribe(Subscribe(requestID: 7, subscriptionID: 1, filter: filter))))
            #expect(error?.knownCode == .invalidFilter && error?.requestID == 7 && !closing, "filter '\(filter)'")
        }
        var bytes = FrameEncoder.encode(.subscribe(Subscribe(requestID: 8, subscriptionID: 1, filter: "ab")))
        bytes[bytes.count - 1] = 0xFE
        let (error, closing) = outcome(bytes)
        #expect(error?.knownCode == .invalidFilter && error?.requestID == 8 && !closing)
    }

    @Test func publishErrorNamesTheOrdinalOfTheOffendingFrame() {
        let harness = CoreHarness()
        let peer = harness.connect()
        var bytes: [UInt8] = []
        for topic in ["ok/1", "ok/2", "bad//3", "ok/4"] { FrameEncoder.encode(.publish(Publish(topic: topic, payload: [])), into: &bytes) }
        harness.send(peer, bytes)
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.requestID == 3)
    }

    @Test func subscriptionBookkeepingErrors() {
        let harness = CoreHarness { $0.maxSubscriptionsPerPeer = 2 }
        let peer = harness.connect()
        harness.subscribe(peer, "a", id: 1)
        harness.send(peer, .subscribe(Subscribe(requestID: 2, subscriptionID: 1, filter: "b")))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .duplicateSubscription)
        harness.subscribe(peer, "b", id: 2)
        harness.send(peer, .subscribe(Subscribe(requestID: 3, subscriptionID: 3, filter: "c")))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .tooManySubscriptions)
        harness.send(peer, .unsubscribe(Unsubscribe(requestID: 4, subscriptionID: 99)))
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .unknownSubscription && error?.requestID == 4)
        #expect(peer.state == .active)
    }

    @Test func unknownPublishFlagsAreRefusedWithoutClosing() {
        let harness = CoreHarness()
        let peer = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "a", id: 1)
        var bytes = FrameEncoder.encode(.publish(Publish(topic: "a", payload: [1])))
        bytes[5] = 0x80
        harness.send(peer, bytes)
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .unsupportedFlags)
        #expect(harness.drain(subscriber).isEmpty)
        #expect(peer.state == .active)
    }

    @Test func inputAfterAFatalErrorIsIgnored() {
        let harness = CoreHarness()
        let peer = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "a", id: 1)
        harness.send(peer, header(length: 0, type: 0x7F) + FrameEncoder.encode(.publish(Publish(topic: "a", payload: [1]))))
        #expect(harness.drain(subscriber).isEmpty)
    }
}
