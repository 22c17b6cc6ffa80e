import HeraldProtocol
import Testing

@testable import HeraldCore

/// File descriptors passed with PUBLISH, SEND and REPLY in the routing core (PROTOCOL.md
/// §4.22). Descriptors here are made-up numbers: the core never touches them but to hand
/// them to the server and to close them, which these tests record.
@Suite("Passing file descriptors (core)")
struct DescriptorPassingTests {
    private static let fds = Capabilities.descriptors

    /// A core whose closed descriptors are recorded.
    final class Closed {
        var descriptors: [Int32] = []
    }

    private func harness(configure: (inout BrokerConfiguration) -> Void = { _ in }) -> (CoreHarness, Closed) {
        let harness = CoreHarness(configure: configure)
        let closed = Closed()
        harness.core.closeDescriptor = { closed.descriptors.append($0) }
        return (harness, closed)
    }

    /// Feeds `frame` with `descriptors`, as one recvmsg that brought both.
    private func send(_ harness: CoreHarness, _ peer: PeerPointer, _ frame: Frame, descriptors: [Int32]) {
        send(harness, peer, FrameEncoder.encode(frame), descriptors: descriptors)
    }

    private func send(_ harness: CoreHarness, _ peer: PeerPointer, _ bytes: [UInt8], descriptors: [Int32]) {
        bytes.withUnsafeBytes { bytes in
            descriptors.withUnsafeBufferPointer { harness.core.receive(peer.pointee.slot, bytes, descriptors: $0, now: harness.clock) }
        }
    }

    private func publish(_ topic: String, _ text: String, count: UInt8, sealed: Bool = false, retain: Bool = false) -> Frame {
        var publish = Publish(topic: topic, payload: Array(text.utf8), retain: retain)
        publish.descriptors = DescriptorBlock(count: count, sealedPayload: sealed)
        return .publish(publish)
    }

    /// Writes everything queued for `peer` as the server does: each frame's descriptors are
    /// taken with its first byte. Returns the frames with the descriptors that went with each.
    private func drainPassing(_ harness: CoreHarness, _ peer: PeerPointer) -> [(frame: Frame, descriptors: [Int32])] {
        var result: [(Frame, [Int32])] = []
        let slot = peer.pointee.slot
        while !peer.pointee.output.isEmpty {
            let bytes = UnsafeRawBufferPointer(start: peer.pointee.output.readPointer, count: peer.pointee.output.count)
            guard let decoded = try? FrameDecoder.decode(bytes) else {
                Issue.record("undecodable output")
                break
            }
            var passed: [Int32] = []
            if let pass = harness.core.nextDescriptorPass(of: slot), pass.offset == 0 {
                passed = pass.descriptors
                harness.core.descriptorsPassed(of: slot)
            }
            harness.core.consumeOutput(of: peer, decoded.length)
            result.append((decoded.frame, passed))
        }
        harness.core.didWrite(peer)
        return result
    }

    @Test func aPublishPassesItsDescriptorsToReceiversThatTakeThemAndSaysSoToOthers() {
        let (harness, closed) = harness()
        let taker = harness.connect(name: "taker", capabilities: Self.fds)
        let plain = harness.connect(name: "plain")
        harness.subscribe(taker, "image/#", id: 1)
        harness.subscribe(plain, "image/#", id: 1)
        let publisher = harness.connect(name: "renderer", capabilities: Self.fds)
        send(harness, publisher, publish("image/frame", "", count: 2, sealed: true), descriptors: [40, 41])
        #expect(closed.descriptors.isEmpty, "held until the receivers are written")
        #expect(harness.core.statistics.descriptorsHeld == 2)

        let received = drainPassing(harness, taker)
        #expect(received.count == 1 && received.first?.descriptors == [40, 41])
        guard case .message(let message) = received.first?.frame else {
            Issue.record("expected MESSAGE, got \(received)")
            return
        }
        #expect(message.descriptors == DescriptorBlock(count: 2, sealedPayload: true))
        #expect(message.topic == Array("image/frame".utf8) && message.payload.isEmpty)

        let withheld = drainPassing(harness, plain)
        guard case .message(let plainMessage) = withheld.first?.frame else {
            Issue.record("expected MESSAGE, got \(withheld)")
            return
        }
        #expect(withheld.first?.descriptors == [], "never passed to a peer without the fds capability")
        #expect(plainMessage.descriptors == DescriptorBlock(count: 0, withheld: 2, sealedPayload: true))
        #expect(closed.descriptors.sorted() == [40, 41], "the broker's copies closed once, after the last receiver")
        #expect(harness.core.holdsNoDescriptors)
        #expect(harness.core.statistics.descriptorsPassed == 2 && harness.core.statistics.descriptorsWithheld == 2)
    }

    @Test func aPublishWithNoReceiverClosesItsDescriptorsAtOnce() {
        let (harness, closed) = harness()
        let publisher = harness.connect(capabilities: Self.fds)
        send(harness, publisher, publish("nobody/listens", "x", count: 1), descriptors: [7])
        #expect(closed.descriptors == [7])
        #expect(harness.drain(publisher).isEmpty)
        #expect(harness.core.holdsNoDescriptors)
    }

    @Test func descriptorsFromAPeerWithoutTheCapabilityAreClosedAndFatal() {
        let (harness, closed) = harness()
        let peer = harness.connect()
        send(harness, peer, publish("a", "x", count: 1), descriptors: [9])
        #expect(closed.descriptors == [9])
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .unexpectedDescriptors && error?.isFatal == true)
        #expect(peer.state == .closing)
    }

    @Test func fewerDescriptorsThanAnnouncedIsFatal() {
        let (harness, closed) = harness()
        let peer = harness.connect(capabilities: Self.fds)
        send(harness, peer, publish("a", "x", count: 2), descriptors: [9])
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .descriptorCountMismatch && error?.isFatal == true)
        harness.core.remove(peer, reason: "test")
        #expect(closed.descriptors == [9])
        #expect(harness.core.holdsNoDescriptors)
    }

    @Test func descriptorsNoFrameAnnouncedAreFatal() {
        let (harness, closed) = harness()
        let peer = harness.connect(capabilities: Self.fds)
        send(harness, peer, .publish(Publish(topic: "a", payload: [1])), descriptors: [5, 6])
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .descriptorCountMismatch && error?.isFatal == true)
        harness.core.remove(peer, reason: "test")
        #expect(closed.descriptors.sorted() == [5, 6])
    }

    @Test func aFrameSplitAcrossReadsKeepsItsDescriptorsUntilItIsWhole() {
        let (harness, closed) = harness()
        let taker = harness.connect(capabilities: Self.fds)
        harness.subscribe(taker, "a", id: 1)
        let publisher = harness.connect(capabilities: Self.fds)
        let bytes = FrameEncoder.encode(publish("a", "payload", count: 1))
        // The descriptors come with the first byte; the rest of the frame later.
        send(harness, publisher, Array(bytes[..<10]), descriptors: [21])
        #expect(publisher.state == .active && closed.descriptors.isEmpty)
        send(harness, publisher, Array(bytes[10...]), descriptors: [])
        let received = drainPassing(harness, taker)
        #expect(received.map(\.descriptors) == [[21]])
        #expect(closed.descriptors == [21] && harness.core.holdsNoDescriptors)
    }

    @Test func tooManyDescriptorsAreClosedAndTheSessionGoesOn() {
        let (harness, closed) = harness()
        let peer = harness.connect(capabilities: Self.fds)
        let many = (100..<117).map(Int32.init)
        send(harness, peer, publish("a", "x", count: 17), descriptors: many)
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .tooManyDescriptors && error?.isFatal == false && error?.requestID == 1)
        #expect(closed.descriptors == many)
        #expect(peer.state == .active)
    }

    @Test func theSendersUIDQuotaRefusesMoreUntilReceiversTakeTheirs() {
        let (harness, closed) = harness { $0.maxDescriptorsPerUID = 2 }
        let taker = harness.connect(capabilities: Self.fds)
        harness.subscribe(taker, "a", id: 1)
        let publisher = harness.connect(capabilities: Self.fds)
        send(harness, publisher, publish("a", "1", count: 1), descriptors: [1])
        send(harness, publisher, publish("a", "2", count: 1), descriptors: [2])
        send(harness, publisher, publish("a", "3", count: 1), descriptors: [3])
        let error = CoreHarness.firstError(harness.drain(publisher))
        #expect(error?.knownCode == .descriptorQuotaExceeded && error?.requestID == 3 && error?.isFatal == false)
        #expect(closed.descriptors == [3])
        #expect(drainPassing(harness, taker).map(\.descriptors) == [[1], [2]])
        send(harness, publisher, publish("a", "4", count: 1), descriptors: [4])
        #expect(drainPassing(harness, taker).map(\.descriptors) == [[4]], "the quota is back once they were written")
        #expect(harness.core.holdsNoDescriptors)
    }

    @Test func aRetainedPublishCannotCarryDescriptors() {
        let (harness, closed) = harness()
        let peer = harness.connect(capabilities: Self.fds)
        send(harness, peer, publish("state/x", "v", count: 1, retain: true), descriptors: [8])
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .unsupportedFlags && error?.isFatal == false)
        #expect(closed.descriptors == [8])
        #expect(harness.core.retained.count == 0)
    }

    @Test func aDirectMessageCarriesDescriptorsOnlyToAPeerThatTakesThem() {
        let (harness, closed) = harness()
        let inbox = Capabilities.direct | Capabilities.directInbox
        let taker = harness.connect(name: "taker", capabilities: inbox | Self.fds)
        let plain = harness.connect(name: "plain", capabilities: inbox)
        let sender = harness.connect(capabilities: Capabilities.direct | Self.fds)
        var send = Send(requestID: 5, target: plain.peerID, topic: "pipe", payload: [])
        send.descriptors = DescriptorBlock(count: 1)
        self.send(harness, sender, .send(send), descriptors: [30])
        let refused = CoreHarness.firstError(harness.drain(sender))
        #expect(refused?.knownCode == .descriptorsNotAccepted && refused?.requestID == 5 && refused?.isFatal == false)
        #expect(harness.drain(plain).isEmpty && closed.descriptors == [30])

        send.target = taker.peerID
        self.send(harness, sender, .send(send), descriptors: [31])
        let received = drainPassing(harness, taker)
        guard case .direct(let direct) = received.first?.frame else {
            Issue.record("expected DIRECT, got \(received)")
            return
        }
        #expect(direct.descriptors == DescriptorBlock(count: 1) && received.first?.descriptors == [31])
        #expect(closed.descriptors == [30, 31])
    }

    @Test func aReplyCarriesDescriptorsToTheRequester() {
        let (harness, closed) = harness()
        let responder = harness.connect(capabilities: Capabilities.requests | Self.fds)
        harness.send(responder, .subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "files/open", responder: true)))
        _ = harness.drain(responder)
        let requester = harness.connect(capabilities: Capabilities.requests | Self.fds)
        harness.send(requester, .request(Request(requestID: 9, timeoutMilliseconds: 0, topic: "files/open", payload: Array("/etc/hosts".utf8))))
        guard case .call(let call) = harness.drain(responder).first else {
            Issue.record("expected CALL")
            return
        }
        var reply = Reply(callID: call.callID, payload: [])
        reply.descriptors = DescriptorBlock(count: 1)
        send(harness, responder, .reply(reply), descriptors: [55])
        let received = drainPassing(harness, requester)
        guard case .response(let response) = received.first?.frame else {
            Issue.record("expected RESPONSE, got \(received)")
            return
        }
        #expect(response.requestID == 9 && response.descriptors == DescriptorBlock(count: 1) && received.first?.descriptors == [55])
        #expect(closed.descriptors == [55] && harness.core.holdsNoDescriptors)
    }

    @Test func aReceiverThatLeavesReleasesWhatWasQueuedForIt() {
        let (harness, closed) = harness()
        let taker = harness.connect(capabilities: Self.fds)
        harness.subscribe(taker, "a", id: 1)
        let publisher = harness.connect(capabilities: Self.fds)
        send(harness, publisher, publish("a", "x", count: 3), descriptors: [1, 2, 3])
        harness.core.remove(taker, reason: "test: it left")
        #expect(closed.descriptors == [1, 2, 3])
        #expect(harness.core.holdsNoDescriptors)
    }

    @Test func aDroppedDeliveryDoesNotHoldDescriptors() {
        let (harness, closed) = harness()
        let taker = harness.connect(policy: .drop, outputLimit: 4096, capabilities: Self.fds)
        harness.subscribe(taker, "a", id: 1)
        let publisher = harness.connect(capabilities: Self.fds)
        for index in 0..<20 {
            send(harness, publisher, publish("a", String(repeating: "x", count: 1000), count: 1), descriptors: [Int32(100 + index)])
        }
        let received = drainPassing(harness, taker)
        let passed = received.flatMap(\.descriptors)
        #expect(passed.count < 20, "some were dropped")
        #expect(Set(closed.descriptors) == Set((100..<120).map(Int32.init)), "every descriptor closed once, passed or dropped")
        #expect(closed.descriptors.count == 20)
        #expect(harness.core.holdsNoDescriptors)
    }
}
