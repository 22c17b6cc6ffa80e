import HeraldProtocol
import Testing

@testable import HeraldCore

/// Direct messages in the routing core (PROTOCOL.md §4.18, §4.19): to one peer by id, stamped
/// with the sender, refused with a specific error when the peer is gone or does not take them.
@Suite("Direct messages")
struct DirectMessageTests {
    private static let inbox = Capabilities.direct | Capabilities.directInbox

    private func send(_ harness: CoreHarness, _ peer: PeerPointer, to target: UInt64, _ topic: String, _ text: String, id: UInt32 = 1) {
        harness.send(peer, .send(Send(requestID: id, target: target, topic: topic, payload: Array(text.utf8))))
    }

    private static func directs(_ frames: [Frame]) -> [Delivery] {
        frames.compactMap { if case .direct(let delivery) = $0 { delivery } else { nil } }
    }

    @Test func aDirectMessageReachesOnlyItsTargetWithTheSendersIdentity() {
        let harness = CoreHarness()
        let service = harness.connect(pid: 300, name: "service", capabilities: Self.inbox)
        let bystander = harness.connect(name: "bystander", capabilities: Self.inbox)
        harness.subscribe(bystander, "#", id: 1)
        let client = harness.connect(pid: 400, name: "client", capabilities: Capabilities.direct)
        send(harness, client, to: service.peerID, "session/lock", "now")
        let delivered = Self.directs(harness.drain(service))
        #expect(delivered == [Delivery(senderID: client.peerID, sender: PeerCredentials(pid: 400, uid: 1000, gid: 1000),
            topic: Array("session/lock".utf8), payload: Array("now".utf8))])
        #expect(harness.drain(bystander).isEmpty, "not published: a subscriber to everything sees nothing")
        #expect(harness.drain(client).isEmpty, "no reply on success")
        #expect(harness.core.statistics.directDelivered == 1)
    }

    @Test func anUnknownOrDepartedPeerIsASpecificError() {
        let harness = CoreHarness()
        let client = harness.connect(capabilities: Capabilities.direct)
        send(harness, client, to: 999, "x", "hi", id: 7)
        let unknown = CoreHarness.firstError(harness.drain(client))
        #expect(unknown?.knownCode == .unknownPeer && unknown?.requestID == 7 && unknown?.isFatal == false)
        let gone = harness.connect(capabilities: Self.inbox)
        let goneID = gone.peerID
        harness.core.remove(gone, reason: "test: it left")
        harness.core.endBatch()
        send(harness, client, to: goneID, "x", "hi", id: 8)
        #expect(CoreHarness.firstError(harness.drain(client))?.knownCode == .unknownPeer)
    }

    @Test func aPeerThatDoesNotTakeDirectMessagesIsNotSentThem() {
        let harness = CoreHarness()
        let plain = harness.connect(capabilities: Capabilities.direct)  // may send, does not receive
        let client = harness.connect(capabilities: Capabilities.direct)
        send(harness, client, to: plain.peerID, "x", "hi", id: 3)
        let error = CoreHarness.firstError(harness.drain(client))
        #expect(error?.knownCode == .directNotAccepted && error?.requestID == 3)
        #expect(harness.drain(plain).isEmpty)
    }

    @Test func badSendsGetTheirOwnErrors() {
        let harness = CoreHarness()
        let target = harness.connect(capabilities: Self.inbox)
        let client = harness.connect(capabilities: Capabilities.direct)
        send(harness, client, to: target.peerID, "a//b", "x", id: 4)
        #expect(CoreHarness.firstError(harness.drain(client))?.knownCode == .invalidTopic)
        var flagged = FrameEncoder.encode(.send(Send(requestID: 5, target: target.peerID, topic: "t", payload: [])))
        flagged[5] = 0x01
        harness.send(client, flagged)
        let flags = CoreHarness.firstError(harness.drain(client))
        #expect(flags?.knownCode == .unsupportedFlags && flags?.requestID == 5)
        var broken = FrameEncoder.encode(.send(Send(requestID: 6, target: target.peerID, topic: "t", payload: [])))
        broken[6] = 0x40
        harness.send(client, broken)
        let fatal = CoreHarness.firstError(harness.drain(client))
        #expect(fatal?.knownCode == .malformedFrame && fatal?.isFatal == true)
        #expect(harness.drain(target).isEmpty)
    }

    @Test func thePolicyAppliesAsForAPublish() {
        let policy = Policy(rules: [
            PolicyRule(filter: try! TopicFilter("secret/#"), subjects: PolicySubjects(), publish: .deny, subscribe: nil,
                location: PolicyLocation(file: "t.toml", line: 3))
        ])
        let harness = CoreHarness { $0.policy = policy }
        let target = harness.connect(capabilities: Self.inbox)
        let client = harness.connect(capabilities: Capabilities.direct)
        send(harness, client, to: target.peerID, "secret/x", "psst", id: 9)
        let error = CoreHarness.firstError(harness.drain(client))
        #expect(error?.knownCode == .forbidden && error?.message.contains("t.toml:3") == true)
        #expect(harness.drain(target).isEmpty)
    }

    @Test func aSlowTargetMeetsItsOwnSlowConsumerPolicy() {
        let harness = CoreHarness()
        let target = harness.connect(policy: .drop, outputLimit: 64 << 10, capabilities: Self.inbox)
        let client = harness.connect(capabilities: Capabilities.direct)
        let text = String(repeating: "x", count: 1000)
        for id in UInt32(1)...200 { send(harness, client, to: target.peerID, "bulk", text, id: id) }
        // The target reads its backlog; the next message brings the DROPPED notice first.
        var frames = harness.drain(target)
        send(harness, client, to: target.peerID, "bulk", "last", id: 201)
        frames += harness.drain(target)
        let delivered = Self.directs(frames).count
        let dropped = frames.compactMap { if case .dropped(let notice) = $0 { notice.messages } else { nil } }.reduce(0, +)
        #expect(delivered < 201 && dropped > 0, "the 64 KiB limit was passed")
        #expect(UInt64(delivered) + dropped == 201, "every message delivered or announced")
        #expect(Self.directs(frames).last?.payload == Array("last".utf8))
    }
}
