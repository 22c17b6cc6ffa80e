import HeraldProtocol
import Testing

@testable import HeraldCore

/// Monitor subscriptions (PROTOCOL.md §4.21): root and the broker's user see messages,
/// requests, replies and direct messages on their filters; nobody else may monitor.
@Suite("Monitoring")
struct MonitoringTests {
    private static func monitored(_ frames: [Frame]) -> [Monitored] {
        frames.compactMap { if case .monitored(let copy) = $0 { copy } else { nil } }
    }

    @Test func aMonitorSeesEveryKindOfTraffic() {
        let harness = CoreHarness()  // the broker runs as uid 1000
        let monitor = harness.connect(uid: 1000, name: "monitor", capabilities: Capabilities.monitor)
        harness.send(monitor, .subscribe(Subscribe(requestID: 1, subscriptionID: 9, filter: "#", monitor: true)))
        #expect(harness.drain(monitor) == [.ok(requestID: 1)])

        let responder = harness.connect(pid: 10, name: "responder", capabilities: Capabilities.directInbox)
        harness.send(responder, .subscribe(Subscribe(requestID: 2, subscriptionID: 1, filter: "settings/#", responder: true)))
        _ = harness.drain(responder)
        let client = harness.connect(pid: 11, name: "client")
        harness.publish(client, "power/battery", Array("87".utf8))
        harness.send(client, .request(Request(requestID: 5, timeoutMilliseconds: 0, topic: "settings/theme", payload: Array("get".utf8))))
        guard case .call(let call)? = harness.drain(responder).first else {
            Issue.record("no CALL")
            return
        }
        harness.send(responder, .reply(Reply(callID: call.callID, status: 0, payload: Array("dark".utf8))))
        harness.send(client, .send(Send(requestID: 6, target: responder.peerID, topic: "note/x", payload: Array("hi".utf8))))
        let frames = harness.drain(monitor)
        #expect(CoreHarness.payloads(frames) == [Array("87".utf8)], "the published message, as for any subscription")
        let copies = Self.monitored(frames)
        #expect(copies.map(\.kind) == [.request, .reply, .direct])
        #expect(copies.allSatisfy { $0.subscriptionID == 9 })
        #expect(copies[0].senderID == client.peerID && copies[0].target == responder.peerID && copies[0].callID == call.callID)
        #expect(String(decoding: copies[0].topic, as: UTF8.self) == "settings/theme" && copies[0].payload == Array("get".utf8))
        #expect(copies[1].senderID == responder.peerID && copies[1].target == client.peerID && copies[1].callID == call.callID)
        #expect(copies[1].payload == Array("dark".utf8) && copies[1].topic.isEmpty)
        #expect(copies[2].target == responder.peerID && String(decoding: copies[2].topic, as: UTF8.self) == "note/x")
        #expect(harness.core.statistics.monitoredCopies == 3)
    }

    @Test func onlyRootAndTheBrokersUserMayMonitor() {
        let harness = CoreHarness { $0.extraAllowedUIDs = [2000] }
        let other = harness.connect(uid: 2000, capabilities: Capabilities.monitor)
        harness.send(other, .subscribe(Subscribe(requestID: 3, subscriptionID: 1, filter: "#", monitor: true)))
        let error = CoreHarness.firstError(harness.drain(other))
        #expect(error?.knownCode == .forbidden && error?.requestID == 3 && error?.message.contains("root") == true)
        let root = harness.connect(uid: 0, capabilities: Capabilities.monitor)
        harness.send(root, .subscribe(Subscribe(requestID: 4, subscriptionID: 1, filter: "#", monitor: true)))
        #expect(harness.drain(root) == [.ok(requestID: 4)])
        harness.send(root, .subscribe(Subscribe(requestID: 5, subscriptionID: 2, filter: "a", responder: true, monitor: true)))
        #expect(CoreHarness.firstError(harness.drain(root))?.knownCode == .forbidden)
    }

    @Test func unsubscribingStopsTheCopies() {
        let harness = CoreHarness()
        let monitor = harness.connect(uid: 0, capabilities: Capabilities.monitor)
        harness.send(monitor, .subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "note/#", monitor: true)))
        _ = harness.drain(monitor)
        harness.send(monitor, .unsubscribe(Unsubscribe(requestID: 2, subscriptionID: 1)))
        #expect(harness.drain(monitor) == [.ok(requestID: 2)])
        let target = harness.connect(capabilities: Capabilities.directInbox)
        let client = harness.connect()
        harness.send(client, .send(Send(requestID: 1, target: target.peerID, topic: "note/x", payload: [])))
        #expect(harness.drain(monitor).isEmpty)
        #expect(harness.core.monitors.count == 0)
    }
}
