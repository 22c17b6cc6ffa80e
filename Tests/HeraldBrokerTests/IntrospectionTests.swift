import Foundation
import HeraldProtocol
import Testing

@testable import HeraldCore

/// The broker answering `$SYS/broker/peers` and `$SYS/broker/stats` itself (PROTOCOL.md §6.6).
@Suite("Introspection")
struct IntrospectionTests {
    private func ask(_ harness: CoreHarness, _ peer: PeerPointer, _ topic: String, id: UInt32 = 1) -> Any? {
        harness.send(peer, .request(Request(requestID: id, timeoutMilliseconds: 0, topic: topic, payload: [])))
        for frame in harness.drain(peer) {
            if case .response(let response) = frame {
                #expect(response.requestID == id && response.senderID == 0 && response.status == 0)
                return try? JSONSerialization.jsonObject(with: Data(response.payload))
            }
        }
        return nil
    }

    @Test func peersListsEveryConnectionWithWhatItHolds() {
        let harness = CoreHarness()
        let panel = harness.connect(pid: 900, name: "panel")
        harness.subscribe(panel, "power/#", id: 3)
        harness.send(panel, .subscribe(Subscribe(requestID: 5, subscriptionID: 4, filter: "settings/get", responder: true)))
        _ = harness.drain(panel)
        let asker = harness.connect(pid: 901, name: "asker")
        harness.core.processExited(panel.pointee.slot)
        let peers = ask(harness, asker, "$SYS/broker/peers") as? [[String: Any]]
        #expect(peers?.count == 2)
        let entry = peers?.first { $0["name"] as? String == "panel" }
        #expect(entry?["peer"] as? Int == Int(panel.peerID) && entry?["pid"] as? Int == 900 && entry?["state"] as? String == "active")
        #expect(entry?["process_exited"] as? Bool == true)
        let subscriptions = entry?["subscriptions"] as? [[String: Any]]
        #expect(subscriptions?.map { $0["filter"] as? String } == ["power/#", "settings/get"])
        #expect(subscriptions?.last?["responder"] as? Bool == true)
    }

    @Test func statsCountsAndPerUIDUsage() {
        let harness = CoreHarness { $0.extraAllowedUIDs = [2000] }
        let first = harness.connect(uid: 1000)
        harness.subscribe(first, "a/#", id: 1)
        let other = harness.connect(uid: 2000)
        harness.publish(other, "a/b", [1, 2, 3])
        _ = harness.drain(first)
        let stats = ask(harness, other, "$SYS/broker/stats") as? [String: Any]
        let counters = stats?["counters"] as? [String: Any]
        #expect(counters?["messages_published"] as? Int == 1 && counters?["messages_delivered"] as? Int == 1)
        #expect(counters?["connections_open"] as? Int == 2)
        #expect((counters?["bytes_received"] as? Int ?? 0) > 0 && (counters?["bytes_written"] as? Int ?? 0) > 0)
        let uids = stats?["uids"] as? [[String: Any]]
        #expect(uids?.map { $0["uid"] as? Int } == [1000, 2000])
        #expect(uids?.first?["subscriptions"] as? Int == 1)
        #expect((stats?["limits"] as? [String: Any])?["max_connections_per_uid"] != nil)
    }

    @Test func onlyTheBrokersOwnTopicsAreAnsweredAndPublishingThereStaysReserved() {
        let harness = CoreHarness()
        let peer = harness.connect()
        harness.send(peer, .request(Request(requestID: 7, timeoutMilliseconds: 0, topic: "$SYS/broker/nothing", payload: [])))
        let unknown = CoreHarness.firstError(harness.drain(peer))
        #expect(unknown?.knownCode == .noResponders && unknown?.requestID == 7)
        harness.send(peer, .request(Request(requestID: 8, timeoutMilliseconds: 0, topic: "$SYS/other", payload: [])))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .reservedTopic)
        harness.publish(peer, "$SYS/broker/peers", [])
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .reservedTopic)
    }
}
