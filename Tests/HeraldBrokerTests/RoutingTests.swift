import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Routing")
struct RoutingTests {
    @Test func exactAndWildcardDelivery() {
        let harness = CoreHarness()
        let publisher = harness.connect(pid: 31, name: "pub")
        let exact = harness.connect()
        let plus = harness.connect()
        let hash = harness.connect()
        let other = harness.connect()
        harness.subscribe(exact, "power/battery", id: 1)
        harness.subscribe(plus, "power/+", id: 1)
        harness.subscribe(hash, "#", id: 1)
        harness.subscribe(other, "network/#", id: 1)
        harness.publish(publisher, "power/battery", Array("87".utf8))
        for subscriber in [exact, plus, hash] {
            let frames = harness.drain(subscriber)
            guard case .message(let delivery) = frames.first, frames.count == 1 else {
                Issue.record("expected one MESSAGE, got \(frames)")
                continue
            }
            #expect(delivery.topic == Array("power/battery".utf8))
            #expect(delivery.payload == Array("87".utf8))
            #expect(delivery.senderID == publisher.peerID)
            #expect(delivery.sender == PeerCredentials(pid: 31, uid: 1000, gid: 1000))
        }
        #expect(harness.drain(other).isEmpty)
        #expect(harness.drain(publisher).isEmpty, "a publisher without a subscription gets nothing")
    }

    @Test func overlappingFiltersDeliverOnce() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "a/#", id: 1)
        harness.subscribe(subscriber, "a/+", id: 2)
        harness.subscribe(subscriber, "a/b", id: 3)
        harness.subscribe(subscriber, "#", id: 4)
        harness.publish(publisher, "a/b", [7])
        #expect(CoreHarness.payloads(harness.drain(subscriber)) == [[7]])
        #expect(harness.core.statistics.messagesDelivered == 1)
    }

    @Test func orderIsPreservedPerPublisher() {
        let harness = CoreHarness()
        let first = harness.connect()
        let second = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "t/#", id: 1)
        var bytes: [UInt8] = []
        var expected: [[UInt8]] = []
        for n in 0..<200 {
            let topic = n % 3 == 0 ? "t/x" : "t/y/\(n % 5)"  // changing topics exercise the route cache
            FrameEncoder.encode(.publish(Publish(topic: topic, payload: [UInt8(n & 0xFF), 1])), into: &bytes)
            expected.append([UInt8(n & 0xFF), 1])
        }
        harness.send(first, bytes)
        harness.publish(second, "t/z", [9, 2])
        #expect(CoreHarness.payloads(harness.drain(subscriber)) == expected + [[9, 2]])
    }

    @Test func publisherReceivesItsOwnMessagesWhenSubscribed() {
        let harness = CoreHarness()
        let peer = harness.connect()
        harness.subscribe(peer, "echo", id: 1)
        harness.publish(peer, "echo", [1, 2, 3])
        #expect(CoreHarness.payloads(harness.drain(peer)) == [[1, 2, 3]])
    }

    @Test func unsubscribeStopsDeliveryAndInvalidatesCachedRoutes() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "a", id: 5)
        harness.publish(publisher, "a", [1])
        harness.send(subscriber, .unsubscribe(Unsubscribe(requestID: 9, subscriptionID: 5)))
        harness.publish(publisher, "a", [2])
        let frames = harness.drain(subscriber)
        #expect(CoreHarness.payloads(frames) == [[1]])
        #expect(frames.contains(.ok(requestID: 9)))
    }

    @Test func newSubscriberSeesMessagesOnACachedTopic() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        harness.publish(publisher, "a", [1])
        let late = harness.connect()
        harness.subscribe(late, "a", id: 1)
        harness.publish(publisher, "a", [2])
        #expect(CoreHarness.payloads(harness.drain(late)) == [[2]])
    }

    @Test func disconnectedSubscriberIsRemovedFromRoutes() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let leaving = harness.connect()
        let staying = harness.connect()
        harness.subscribe(leaving, "a", id: 1)
        harness.subscribe(staying, "a", id: 1)
        harness.publish(publisher, "a", [1])
        harness.core.remove(leaving, reason: "test")
        harness.core.endBatch()  // frees the peer: a stale route would now touch freed memory
        harness.publish(publisher, "a", [2])
        #expect(CoreHarness.payloads(harness.drain(staying)) == [[1], [2]])
        #expect(harness.core.subscriptionCount == 1)
    }

    @Test func dollarTopicsAreReservedAndNotMatchedByLeadingWildcards() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let everything = harness.connect()
        harness.subscribe(everything, "#", id: 1)
        harness.publish(publisher, "$SYS/peers", [1])
        let error = CoreHarness.firstError(harness.drain(publisher))
        #expect(error?.knownCode == .reservedTopic)
        #expect(error?.isFatal == false)
        #expect(error?.requestID == 1, "the first PUBLISH on the connection")
        #expect(harness.drain(everything).isEmpty)
    }

    @Test func emptyPayloadAndMaximumTopic() {
        let harness = CoreHarness { $0.maxTopicLength = 64 }
        let publisher = harness.connect()
        let subscriber = harness.connect()
        let topic = String(repeating: "x", count: 64)
        harness.subscribe(subscriber, topic, id: 1)
        harness.publish(publisher, topic, [])
        #expect(CoreHarness.payloads(harness.drain(subscriber)) == [[]])
        harness.publish(publisher, topic + "y", [1])
        #expect(CoreHarness.firstError(harness.drain(publisher))?.knownCode == .topicTooLong)
    }

    @Test func byteAtATimeInputRoutesTheSame() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "+/b", id: 1)
        var bytes: [UInt8] = []
        for n in 0..<20 { FrameEncoder.encode(.publish(Publish(topic: "a/b", payload: [UInt8](repeating: UInt8(n), count: n))), into: &bytes) }
        FrameEncoder.encode(.ping(token: 3), into: &bytes)
        for byte in bytes { harness.send(publisher, [byte]) }
        #expect(CoreHarness.payloads(harness.drain(subscriber)) == (0..<20).map { [UInt8](repeating: UInt8($0), count: $0) })
        #expect(harness.drain(publisher) == [.pong(token: 3)])
    }

    @Test func randomlySplitReadsRouteTheSame() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            let harness = CoreHarness()
            let publisher = harness.connect()
            let subscriber = harness.connect()
            harness.subscribe(subscriber, "s/#", id: 1)
            var bytes: [UInt8] = []
            var expected: [[UInt8]] = []
            for n in 0..<100 {
                let payload = [UInt8](repeating: UInt8(n), count: Int.random(in: 0...300, using: &generator))
                FrameEncoder.encode(.publish(Publish(topic: "s/\(n % 7)", payload: payload)), into: &bytes)
                expected.append(payload)
            }
            var offset = 0
            while offset < bytes.count {
                let length = min(bytes.count - offset, Int.random(in: 1...700, using: &generator))
                harness.send(publisher, Array(bytes[offset..<offset + length]))
                offset += length
            }
            #expect(CoreHarness.payloads(harness.drain(subscriber)) == expected)
            #expect(!publisher.hasBufferedInput)
        }
    }
}
