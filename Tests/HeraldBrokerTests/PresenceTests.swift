import Foundation
import HeraldProtocol
import Testing

@testable import HeraldCore

/// Presence and last wills in the routing core (PROTOCOL.md §4.20, §6.5).
@Suite("Presence and last wills")
struct PresenceTests {
    private static func json(_ frames: [Frame], topic: String) -> [[String: Any]] {
        frames.compactMap { frame -> [String: Any]? in
            guard case .message(let delivery) = frame, String(decoding: delivery.topic, as: UTF8.self) == topic else { return nil }
            return (try? JSONSerialization.jsonObject(with: Data(delivery.payload))) as? [String: Any]
        }
    }

    @Test func connectsAndDisconnectsArePublishedWithWhoAndWhy() {
        let harness = CoreHarness()
        let watcher = harness.connect(name: "watcher")
        harness.subscribe(watcher, "$SYS/peers/#", id: 1)
        let everything = harness.connect(name: "everything")
        harness.subscribe(everything, "#", id: 1)
        let panel = harness.connect(uid: 1000, pid: 4321, name: "panel \"quoted\"")
        var frames = harness.drain(watcher)
        let connected = Self.json(frames, topic: "$SYS/peers/connected")
        #expect(connected.count == 2, "'everything' and 'panel' connected after the watcher subscribed")
        #expect(connected.last?["peer"] as? Int == Int(panel.peerID) && connected.last?["pid"] as? Int == 4321)
        #expect(connected.last?["name"] as? String == "panel \"quoted\"" && connected.last?["uid"] as? Int == 1000)
        if case .message(let delivery) = frames.last {
            #expect(delivery.senderID == 0 && delivery.sender.pid == 4242, "sent by the broker itself")
        }
        #expect(harness.drain(everything).isEmpty, "'#' does not reach the broker's $ topics")

        let panelID = panel.peerID  // the peer is freed at the end of the batch
        harness.core.remove(panel, reason: "end of stream")
        harness.core.endBatch()
        frames = harness.drain(watcher)
        let gone = Self.json(frames, topic: "$SYS/peers/disconnected")
        #expect(gone.first?["peer"] as? Int == Int(panelID) && gone.first?["reason"] as? String == "end of stream")
        #expect(harness.core.statistics.presenceEvents == 4, "watcher, everything, panel connected; panel gone")
    }

    @Test func aWillIsPublishedWhenAPeerGoesWithoutGoodbyeOnly() {
        let harness = CoreHarness()
        let listener = harness.connect(name: "listener", capabilities: Capabilities.retained)
        harness.subscribe(listener, "service/state", id: 1)
        let service = harness.connect(pid: 700, name: "service", capabilities: Capabilities.lastWill)
        harness.send(service, .will(Will(requestID: 5, topic: "service/state", payload: Array("offline".utf8), retain: true)))
        #expect(harness.drain(service) == [.ok(requestID: 5)])
        harness.core.remove(service, reason: "end of stream")  // killed: no GOODBYE
        harness.core.endBatch()
        let frames = harness.drain(listener)
        #expect(CoreHarness.payloads(frames) == [Array("offline".utf8)])
        if case .message(let delivery)? = frames.first { #expect(delivery.sender.pid == 700, "published as the peer itself") }
        #expect(harness.core.statistics.willsPublished == 1)
        #expect(harness.core.retained.count == 1, "a retained will becomes the topic's current value")

        // With GOODBYE, no will.
        let polite = harness.connect(name: "polite", capabilities: Capabilities.lastWill)
        harness.send(polite, .will(Will(requestID: 6, topic: "service/state", payload: Array("gone".utf8))))
        _ = harness.drain(polite)
        harness.send(polite, .goodbye(Goodbye()))
        _ = harness.drain(polite)
        harness.core.remove(polite, reason: "closed")
        #expect(CoreHarness.payloads(harness.drain(listener)).isEmpty)
    }

    @Test func aWillIsCheckedWhenSetAndCanBeCleared() {
        let harness = CoreHarness()
        let listener = harness.connect()
        harness.subscribe(listener, "a/#", id: 1)
        let peer = harness.connect(capabilities: Capabilities.lastWill)
        harness.send(peer, .will(Will(requestID: 1, topic: "$SYS/x", payload: [])))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .reservedTopic)
        harness.send(peer, .will(Will(requestID: 2, topic: "a//b", payload: [])))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .invalidTopic)
        harness.send(peer, .will(Will(requestID: 3, topic: "a/b", payload: Array("x".utf8))))
        #expect(harness.drain(peer) == [.ok(requestID: 3)])
        harness.send(peer, .will(Will(requestID: 4, topic: [], payload: [])))
        #expect(harness.drain(peer) == [.ok(requestID: 4)])
        harness.core.remove(peer, reason: "end of stream")
        #expect(CoreHarness.payloads(harness.drain(listener)).isEmpty, "the cleared will is not published")
        var flagged = FrameEncoder.encode(.will(Will(requestID: 9, topic: "a/b", payload: [])))
        flagged[5] = 0x02
        let other = harness.connect()
        harness.send(other, flagged)
        #expect(CoreHarness.firstError(harness.drain(other))?.knownCode == .unsupportedFlags)
    }

    @Test func thePolicyCanForbidAWill() {
        let policy = Policy(rules: [
            PolicyRule(filter: try! TopicFilter("locked/#"), subjects: PolicySubjects(), publish: .deny, subscribe: nil,
                location: PolicyLocation(file: "t.toml", line: 2))
        ])
        let harness = CoreHarness { $0.policy = policy }
        let peer = harness.connect(capabilities: Capabilities.lastWill)
        harness.send(peer, .will(Will(requestID: 1, topic: "locked/x", payload: [])))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .forbidden)
    }
}
