import HeraldProtocol
import Testing

@testable import HeraldCore

/// Retained messages in the routing core (PROTOCOL.md §4.10, §4.13): stored per topic,
/// handed to each later subscription right after its OK, charged to the publisher's uid.
@Suite("Retained messages")
struct RetainedTests {
    static let withRetained = Capabilities.retained

    private func retain(_ harness: CoreHarness, _ peer: PeerPointer, _ topic: String, _ payload: String) {
        harness.send(peer, .publish(Publish(topic: topic, payload: Array(payload.utf8), retain: true)))
    }

    private static func retainedFrames(_ frames: [Frame]) -> [RetainedDelivery] {
        frames.compactMap { if case .retained(let retained) = $0 { retained } else { nil } }
    }

    @Test func welcomeConfirmsOnlyTheCapabilitiesTheBrokerKnows() {
        let harness = CoreHarness()
        let peer = harness.core.connectPeer(credentials: PeerCredentials(pid: 1, uid: 1000, gid: 1000), groups: [], now: harness.clock)
        harness.send(peer, .hello(Hello(capabilities: 0xFFFF_FFFF, clientName: "everything")))
        guard case .welcome(let welcome) = harness.drain(peer).first else {
            Issue.record("no WELCOME")
            return
        }
        #expect(welcome.capabilities == UInt16(Capabilities.known))
    }

    @Test func aLaterSubscriptionGetsTheRetainedMessagesRightAfterItsOKInTopicOrder() {
        let harness = CoreHarness { $0.extraAllowedUIDs = [1001] }
        let publisher = harness.connect(uid: 1000, pid: 501, name: "battery")
        retain(harness, publisher, "power/battery/1", "87")
        retain(harness, publisher, "power/ac", "online")
        retain(harness, publisher, "network/state", "up")
        #expect(harness.drain(publisher).isEmpty)

        let panel = harness.connect(uid: 1001, name: "panel", capabilities: Self.withRetained)
        harness.send(panel, .subscribe(Subscribe(requestID: 9, subscriptionID: 4, filter: "power/#")))
        // And a message published after the SUBSCRIBE comes after the retained ones.
        harness.publish(publisher, "power/ac", Array("offline".utf8))
        let frames = harness.drain(panel)
        #expect(frames.first == .ok(requestID: 9))
        let retained = Self.retainedFrames(frames)
        #expect(retained.map { String(decoding: $0.topic, as: UTF8.self) } == ["power/ac", "power/battery/1"])
        #expect(retained.map { String(decoding: $0.payload, as: UTF8.self) } == ["online", "87"])
        #expect(retained.allSatisfy { $0.subscriptionID == 4 && $0.senderID == publisher.peerID })
        #expect(retained.allSatisfy { $0.sender == PeerCredentials(pid: 501, uid: 1000, gid: 1000) })
        #expect(retained.allSatisfy { $0.retainedAt >= InMemoryBroker.wallClockEpoch })
        #expect(CoreHarness.payloads(frames) == [Array("offline".utf8)])
        #expect(frames.count == 4, "OK, two RETAINED, then the live MESSAGE: \(frames)")
        #expect(harness.core.statistics.retainedDelivered == 2)
    }

    @Test func currentSubscribersGetARetainedPublishAsAnOrdinaryMessage() {
        let harness = CoreHarness()
        let subscriber = harness.connect(capabilities: Self.withRetained)
        harness.subscribe(subscriber, "state/#", id: 1)
        let publisher = harness.connect()
        retain(harness, publisher, "state/power", "on")
        #expect(harness.drain(subscriber) == [
            .message(Delivery(senderID: publisher.peerID, sender: PeerCredentials(pid: 77, uid: 1000, gid: 1000),
                topic: Array("state/power".utf8), payload: Array("on".utf8)))
        ])
    }

    @Test func aNewerRetainedPublishReplacesAndAnEmptyOneClears() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        retain(harness, publisher, "state/power", "on")
        retain(harness, publisher, "state/power", "off")
        #expect(harness.core.retained.count == 1)
        let first = harness.connect(capabilities: Self.withRetained)
        harness.send(first, .subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "state/power")))
        #expect(Self.retainedFrames(harness.drain(first)).map(\.payload) == [Array("off".utf8)])

        retain(harness, publisher, "state/power", "")
        // The clearing publish reaches current subscribers as an empty message.
        #expect(CoreHarness.payloads(harness.drain(first)) == [[]])
        #expect(harness.core.retained.count == 0)
        #expect(harness.core.retained.usage(of: 1000) == RetainedStore.Usage())
        let second = harness.connect(capabilities: Self.withRetained)
        harness.send(second, .subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "state/#")))
        #expect(harness.drain(second) == [.ok(requestID: 1)])
        // Clearing a topic with nothing retained is no error.
        retain(harness, publisher, "state/other", "")
        #expect(harness.drain(publisher).isEmpty)
    }

    @Test func aClientWithoutTheCapabilityGetsPlainMessages() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        retain(harness, publisher, "state/power", "on")
        let old = harness.connect(capabilities: 0)
        harness.send(old, .subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "#")))
        let frames = harness.drain(old)
        #expect(frames.first == .ok(requestID: 1))
        #expect(CoreHarness.payloads(frames) == [Array("on".utf8)])
        #expect(Self.retainedFrames(frames).isEmpty)
    }

    @Test func overTheMessageQuotaNothingIsStoredOrDeliveredAndThePublisherIsTold() {
        let harness = CoreHarness {
            $0.maxRetainedMessagesPerUID = 2
            $0.extraAllowedUIDs = [2000, 3000]
        }
        let subscriber = harness.connect(uid: 2000)
        harness.subscribe(subscriber, "#", id: 1)
        let publisher = harness.connect(uid: 1000)
        retain(harness, publisher, "a", "1")
        retain(harness, publisher, "b", "2")
        retain(harness, publisher, "c", "3")
        let error = CoreHarness.firstError(harness.drain(publisher))
        #expect(error?.knownCode == .retainedQuotaExceeded && error?.isFatal == false && error?.requestID == 3)
        #expect(error?.message.contains("uid 1000 already holds 2 retained messages, its maximum of 2") == true, "\(String(describing: error))")
        #expect(CoreHarness.payloads(harness.drain(subscriber)) == [Array("1".utf8), Array("2".utf8)])
        #expect(harness.core.retained.message(on: Array("c".utf8)) == nil)
        #expect(harness.core.statistics.retainedQuotaRefusals == 1)

        // At the quota, replacing one of its own topics is fine, and so is clearing one.
        retain(harness, publisher, "a", "1b")
        retain(harness, publisher, "b", "")
        #expect(harness.drain(publisher).isEmpty)
        // Another uid is not affected by this one's quota.
        let other = harness.connect(uid: 3000)
        retain(harness, other, "c", "3")
        #expect(harness.drain(other).isEmpty)
        #expect(harness.core.retained.isConsistent())
    }

    @Test func overTheByteQuotaTheTopicKeepsItsPreviousMessage() {
        let harness = CoreHarness { $0.maxRetainedBytesPerUID = 100 }
        let publisher = harness.connect()
        retain(harness, publisher, "big", String(repeating: "x", count: 90))
        retain(harness, publisher, "big", String(repeating: "y", count: 98))
        let error = CoreHarness.firstError(harness.drain(publisher))
        #expect(error?.knownCode == .retainedQuotaExceeded && error?.requestID == 2)
        #expect(error?.message.contains("101 more would pass its maximum of 100") == true, "\(String(describing: error))")
        #expect(harness.core.retained.message(on: Array("big".utf8))?.payload == Array(repeating: UInt8(ascii: "x"), count: 90))
        #expect(harness.core.retained.usage(of: 1000) == RetainedStore.Usage(messages: 1, bytes: 93))
    }

    @Test func aRetainedPublishIsCheckedLikeAnyOtherBeforeItIsStored() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        retain(harness, publisher, "a//b", "x")
        retain(harness, publisher, "$SYS/x", "x")
        harness.send(publisher, Array(FrameEncoder.encode(.publish(Publish(topic: "ok/topic", payload: [1], retain: true)))).withFlags(0x03))
        let errors = harness.drain(publisher).compactMap { if case .error(let error) = $0 { error } else { nil } }
        #expect(errors.map(\.knownCode) == [.invalidTopic, .reservedTopic, .unsupportedFlags])
        #expect(errors.map(\.requestID) == [1, 2, 3])
        #expect(harness.core.retained.count == 0)
        #expect(harness.core.peerCount == 1, "the session goes on")
    }

    @Test func theStoreChargesThePublishersUIDAndGivesItBackOnReplace() {
        var store = RetainedStore()
        let limits = RetainedStore.Limits(messagesPerUID: 10, bytesPerUID: 1000)
        func message(_ topic: String, _ payload: String, uid: UInt32) -> RetainedMessage {
            RetainedMessage(topic: Array(topic.utf8), payload: Array(payload.utf8), senderID: 1,
                sender: PeerCredentials(pid: 1, uid: uid, gid: uid), retainedAt: 1)
        }
        #expect(store.retain(message("t", "abc", uid: 1), limits: limits) == .stored)
        #expect(store.usage(of: 1) == RetainedStore.Usage(messages: 1, bytes: 4))
        // Another uid replaces it: the charge moves.
        #expect(store.retain(message("t", "abcdef", uid: 2), limits: limits) == .stored)
        #expect(store.usage(of: 1) == RetainedStore.Usage())
        #expect(store.usage(of: 2) == RetainedStore.Usage(messages: 1, bytes: 7))
        #expect(store.retain(message("t", "", uid: 3), limits: limits) == .cleared)
        #expect(store.usage(of: 2) == RetainedStore.Usage() && store.totalBytes == 0)
        #expect(store.retain(message("t", "", uid: 3), limits: limits) == .nothingToClear)
        #expect(store.isConsistent())
        let filter = try! TopicFilter("a/+")
        _ = store.retain(message("a/b", "1", uid: 1), limits: limits)
        _ = store.retain(message("a/b/c", "2", uid: 1), limits: limits)
        _ = store.retain(message("a", "3", uid: 1), limits: limits)
        #expect(store.matching(filter).map(\.topic) == [Array("a/b".utf8)])
    }
}

@Suite("Retained snapshots")
struct RetainedSnapshotTests {
    static func message(_ topic: String, _ payload: String, uid: UInt32 = 1000) -> RetainedMessage {
        RetainedMessage(topic: Array(topic.utf8), payload: Array(payload.utf8), senderID: 9,
            sender: PeerCredentials(pid: 4242, uid: uid, gid: uid), retainedAt: 1_767_225_600_123_456_789)
    }

    @Test func aSnapshotReadsBackExactly() throws {
        let messages = [Self.message("power/battery", "87"), Self.message("ünïcode/tøpic", "\u{0}\u{FF}", uid: 0), Self.message("a", "x")]
        let bytes = RetainedSnapshot.encode(messages)
        #expect(try RetainedSnapshot.decode(bytes) == messages)
        #expect(try RetainedSnapshot.decode(RetainedSnapshot.encode([])) == [])
    }

    @Test func aDamagedSnapshotIsRefusedWhole() {
        let bytes = RetainedSnapshot.encode([Self.message("power/battery", "87"), Self.message("power/ac", "online")])
        // Every truncation and every single flipped byte is caught.
        for length in 0..<bytes.count {
            #expect(throws: RetainedSnapshot.Invalid.self) { try RetainedSnapshot.decode(Array(bytes[..<length])) }
        }
        for position in bytes.indices {
            var damaged = bytes
            damaged[position] ^= 0x40
            #expect(throws: RetainedSnapshot.Invalid.self) { try RetainedSnapshot.decode(damaged) }
        }
        // Well-formed but impossible content (a valid checksum over it) is refused too.
        for (bad, reason) in [
            ([Self.message("a//b", "x")], "topic"), ([Self.message("a", "")], "empty payload"),
            ([Self.message("a", "1"), Self.message("a", "2")], "appears twice"), ([Self.message("$SYS/x", "1")], "topic"),
        ] {
            #expect {
                try RetainedSnapshot.decode(RetainedSnapshot.encode(bad))
            } throws: { error in
                (error as? RetainedSnapshot.Invalid)?.description.contains(reason) == true
            }
        }
    }

    @Test func restoringChargesTheUIDsAndForgetsTheOldPeerIDs() {
        let harness = CoreHarness { $0.maxRetainedMessagesPerUID = 1 }
        let restored = harness.core.restoreRetained([Self.message("a", "1"), Self.message("b", "2"), Self.message("c", "3", uid: 7)])
        #expect(restored == 3)
        #expect(harness.core.retained.usage(of: 1000) == RetainedStore.Usage(messages: 2, bytes: 4))
        #expect(harness.core.retained.all.allSatisfy { $0.senderID == 0 })
        #expect(harness.core.retained.isConsistent())
        // Over its (lowered) quota the uid can add nothing more.
        let publisher = harness.connect()
        harness.send(publisher, .publish(Publish(topic: "d", payload: [1], retain: true)))
        #expect(CoreHarness.firstError(harness.drain(publisher))?.knownCode == .retainedQuotaExceeded)
        #expect(harness.core.retainedChanges == 0)
    }
}

extension Array where Element == UInt8 {
    /// The same frame with its header's flags byte replaced.
    fileprivate func withFlags(_ flags: UInt8) -> [UInt8] {
        var copy = self
        copy[5] = flags
        return copy
    }
}
