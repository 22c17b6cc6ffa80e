import HeraldProtocol
import Testing

@testable import HeraldCore

/// The bounds that keep any local user from growing the broker's memory or pinning its
/// descriptors (PROTOCOL.md §5.6), checked on the routing core with a controlled clock.
@Suite("Resource limits")
struct ResourceLimitTests {
    private static func code(_ frames: [Frame]) -> ErrorCode? { CoreHarness.firstError(frames)?.knownCode }

    @Test func refusedConnectionsCloseWithoutLingering() {
        let harness = CoreHarness()
        let stranger = harness.connect(uid: 4321, hello: false)
        #expect(stranger.state == .closing)
        #expect(stranger.closesImmediately)
        #expect(Self.code(harness.drain(stranger)) == .notAuthorized)
        #expect(harness.core.lingeringCount == 0)
    }

    @Test func handshakeLimitPerUIDRefusesOnlyThatUID() {
        let harness = CoreHarness { $0.maxHandshakingConnectionsPerUID = 3 }
        let waiting = (0..<3).map { _ in harness.connect(uid: 1000, hello: false) }
        #expect(waiting.allSatisfy { $0.state == .handshaking })
        let fourth = harness.connect(uid: 1000, hello: false)
        #expect(fourth.state == .closing && fourth.closesImmediately)
        let refusal = CoreHarness.firstError(harness.drain(fourth))
        #expect(refusal?.knownCode == .tooManyConnections && refusal?.message.contains("uid 1000") == true)
        // Another uid is not affected.
        #expect(harness.connect(uid: 0, hello: false).state == .handshaking)
        // Completing a handshake frees a place.
        harness.send(waiting[0], .hello(Hello(clientName: "late")))
        #expect(waiting[0].state == .active)
        #expect(harness.connect(uid: 1000, hello: false).state == .handshaking)
    }

    @Test func handshakeLimitInTotal() {
        let harness = CoreHarness { $0.maxHandshakingConnections = 4 }
        for uid in [1000, 0, 1000, 0] as [UInt32] { #expect(harness.connect(uid: uid, hello: false).state == .handshaking) }
        let fifth = harness.connect(uid: 0, hello: false)
        #expect(Self.code(harness.drain(fifth)) == .tooManyConnections)
        // Closing a handshaking peer frees its place too.
        let quitter = harness.connect(uid: 1000, hello: false)
        #expect(quitter.state == .closing)
        harness.core.endBatch()
        let another = harness.connect(uid: 1000, hello: false)
        #expect(another.state == .closing)
    }

    @Test func incompleteFrameTimesOut() {
        let harness = CoreHarness { $0.frameTimeout = 10 }
        let peer = harness.connect()
        let frame = FrameEncoder.encode(.publish(Publish(topic: "a", payload: [UInt8](repeating: 1, count: 1000))))
        harness.send(peer, Array(frame.dropLast(8)))
        #expect(harness.core.inputBytesHeld == frame.count - 8)
        #expect(harness.core.expireDeadlines(now: harness.clock + 9.5).isEmpty)
        #expect(peer.state == .active)
        _ = harness.core.expireDeadlines(now: harness.clock + 10)
        #expect(peer.state == .closing)
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .frameTimeout && error?.isFatal == true)
        #expect(harness.core.inputBytesHeld == 0)
        #expect(harness.core.statistics.frameTimeouts == 1)
    }

    @Test func aFrameThatKeepsArrivingDoesNotTimeOutWhileEachFrameIsQuick() {
        let harness = CoreHarness { $0.frameTimeout = 10 }
        let peer = harness.connect()
        let frame = FrameEncoder.encode(.publish(Publish(topic: "a", payload: [1, 2, 3])))
        // Every read ends inside a new frame, for longer than the timeout in total.
        for step in 0..<30 {
            harness.clock += 1
            harness.send(peer, step == 0 ? Array(frame.prefix(5)) : Array(frame.suffix(from: 5) + frame.prefix(5)))
            _ = harness.core.expireDeadlines(now: harness.clock)
        }
        #expect(peer.state == .active)
        #expect(harness.core.statistics.messagesPublished == 29)
    }

    @Test func partialInputBudgetClosesTheNewestOffenderAndTheRestRoutes() {
        let harness = CoreHarness { $0.partialInputBudget = 100_000 }
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "big", id: 1)
        let first = harness.connect()
        let second = harness.connect()
        let frame = FrameEncoder.encode(.publish(Publish(topic: "big", payload: [UInt8](repeating: 7, count: 70_000))))
        harness.send(first, Array(frame.prefix(60_000)))
        harness.send(second, Array(frame.prefix(60_000)))
        #expect(second.state == .closing)
        let error = CoreHarness.firstError(harness.drain(second))
        #expect(error?.knownCode == .inputBudgetExceeded && error?.isFatal == true)
        #expect(harness.core.inputBytesHeld == 60_000)
        harness.send(first, Array(frame.suffix(from: 60_000)))
        #expect(CoreHarness.payloads(harness.drain(subscriber)).map(\.count) == [70_000])
        #expect(harness.core.inputBytesHeld == 0)
    }

    @Test func lingeringIsBounded() {
        let harness = CoreHarness { $0.maxLingeringConnections = 2 }
        let peers = (0..<3).map { _ in harness.connect() }
        for peer in peers { harness.send(peer, [0, 0, 0, 0, 0x6E, 0, 0, 0]) }  // unknown type: fatal
        #expect(peers.allSatisfy { $0.state == .closing })
        #expect(peers.map { $0.closesImmediately } == [false, false, true])
        #expect(harness.core.lingeringCount == 2)
        // Every one was still told why.
        #expect(peers.allSatisfy { Self.code(harness.drain($0)) == .unknownFrameType })
        for peer in peers { harness.core.remove(peer, reason: "written") }
        #expect(harness.core.lingeringCount == 0)
    }
}

/// Per-uid quotas: summed over every connection of a uid, and only the connection that goes
/// over one is refused.
@Suite("Per-uid quotas")
struct UserQuotaTests {
    @Test func connectionsPerUIDAreCappedForThatUIDOnly() {
        let harness = CoreHarness { $0.maxConnectionsPerUID = 3 }
        let first = (0..<3).map { _ in harness.connect(uid: 1000) }
        let fourth = harness.connect(uid: 1000, hello: false)
        let refusal = CoreHarness.firstError(harness.drain(fourth))
        #expect(refusal?.knownCode == .tooManyConnections && refusal?.message.contains("uid 1000") == true)
        #expect(first.allSatisfy { $0.state == .active }, "the uid's other connections are untouched")
        #expect(harness.connect(uid: 0).state == .active, "another uid is not affected")
        // A connection that closes frees its place.
        harness.core.remove(first[0], reason: "gone")
        #expect(harness.connect(uid: 1000).state == .active)
    }

    @Test func subscriptionsPerUIDCountEveryConnection() {
        let harness = CoreHarness { $0.maxSubscriptionsPerUID = 3 }
        let a = harness.connect(uid: 1000)
        let b = harness.connect(uid: 1000)
        harness.subscribe(a, "x/1", id: 1)
        harness.subscribe(a, "x/2", id: 2)
        harness.subscribe(b, "x/3", id: 1)
        harness.send(b, .subscribe(Subscribe(requestID: 9, subscriptionID: 2, filter: "x/4")))
        let refusal = CoreHarness.firstError(harness.drain(b))
        #expect(refusal?.knownCode == .tooManySubscriptions && refusal?.isFatal == false && refusal?.requestID == 9)
        #expect(refusal?.message.contains("uid 1000") == true)
        #expect(a.state == .active && b.state == .active)
        #expect(harness.core.statistics.quotaRefusals == 1)
        // Another uid subscribes freely.
        harness.subscribe(harness.connect(uid: 0), "x/5", id: 1)
        // Unsubscribing and disconnecting give the places back.
        harness.send(a, .unsubscribe(Unsubscribe(requestID: 10, subscriptionID: 1)))
        #expect(harness.drain(a) == [.ok(requestID: 10)])
        harness.subscribe(b, "x/4", id: 2)
        harness.core.remove(b, reason: "gone")
        harness.subscribe(a, "x/6", id: 3)
        harness.subscribe(a, "x/7", id: 4)
        #expect(harness.core.usage(of: 1000).subscriptions == 3)
        harness.core.remove(a, reason: "gone")
        #expect(harness.core.usage(of: 1000).subscriptions == 0 && harness.core.usage(of: 1000).connections == 0)
    }

    /// The sum kept per uid equals what is queued for its connections, whatever happened.
    static func expectConsistentAccounting(_ harness: CoreHarness, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(harness.broker.queuedOutputIsConsistent(), sourceLocation: sourceLocation)
    }

    @Test func queuedOutputIsChargedToTheUIDAndOnlyLaggingSubscribersPay() {
        let harness = CoreHarness {
            $0.maxQueuedBytesPerUID = 400 << 10
            $0.outputLimit = 1 << 20
            $0.extraAllowedUIDs = [2000, 3000]
        }
        let publisher = harness.connect(uid: 1000)
        // Three subscribers of uid 2000 that never read, one of the same uid that keeps up,
        // and one of another uid that never reads.
        let lagging = (0..<3).map { _ in harness.connect(uid: 2000) }
        let keepingUp = harness.connect(uid: 2000)
        let otherUser = harness.connect(uid: 3000)
        for (index, subscriber) in (lagging + [keepingUp, otherUser]).enumerated() {
            harness.subscribe(subscriber, "load", id: UInt32(index + 1))
        }
        let payload = [UInt8](repeating: 7, count: 1024)
        var keptUp = 0
        for _ in 0..<300 {
            harness.publish(publisher, "load", payload)
            keptUp += CoreHarness.payloads(harness.drain(keepingUp)).count
        }
        Self.expectConsistentAccounting(harness)
        let uidQueued = harness.core.queuedBytes(of: 2000)
        #expect(uidQueued <= (400 << 10) + 1100, "uid 2000 holds \(uidQueued) bytes")
        #expect(lagging.allSatisfy { $0.totalDropped > 0 && $0.state == .active })
        #expect(keptUp == 300, "the subscriber that keeps up lost nothing")
        #expect(otherUser.totalDropped == 0 && otherUser.queuedOutput > 300 * 1024, "another uid is not affected")
        #expect(harness.core.statistics.queuedQuotaHits > 0)
        // A lagging subscriber that reads learns how many it lost.
        var frames = harness.drain(lagging[0])
        harness.publish(publisher, "load", payload)
        frames += harness.drain(lagging[0])
        let announced = frames.reduce(0) { if case .dropped(let notice) = $1 { $0 + Int(notice.messages) } else { $0 } }
        #expect(announced > 0 && CoreHarness.payloads(frames).count + announced == 301, "every message delivered or announced")
        Self.expectConsistentAccounting(harness)
        for subscriber in lagging { harness.core.remove(subscriber, reason: "gone") }
        harness.core.remove(keepingUp, reason: "gone")
        #expect(harness.core.queuedBytes(of: 2000) == 0)
        Self.expectConsistentAccounting(harness)
    }

    @Test func aLaggingDisconnectSubscriberIsToldItsUIDIsAtItsQuota() {
        let harness = CoreHarness {
            $0.maxQueuedBytesPerUID = 300 << 10
            $0.outputLimit = 1 << 20
            $0.extraAllowedUIDs = [2000]
        }
        let publisher = harness.connect(uid: 1000)
        let first = harness.connect(uid: 2000, policy: .disconnect)
        let second = harness.connect(uid: 2000, policy: .disconnect)
        harness.subscribe(first, "load", id: 1)
        harness.subscribe(second, "load", id: 1)
        for _ in 0..<200 { harness.publish(publisher, "load", [UInt8](repeating: 1, count: 1024)) }
        let closed = [first, second].filter { $0.state == .closing }
        #expect(closed.count >= 1)
        let error = closed.first.flatMap { CoreHarness.firstError(harness.drain($0)) }
        #expect(error?.knownCode == .slowConsumer && error?.message.contains("uid 2000") == true, "\(String(describing: error))")
        Self.expectConsistentAccounting(harness)
    }
}
