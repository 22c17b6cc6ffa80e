import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Handshake and admission")
struct HandshakeTests {
    @Test func welcomeReportsIdentityAndLimits() {
        let harness = CoreHarness { $0.outputLimit = 1 << 20 }
        let peer = harness.core.connectPeer(credentials: PeerCredentials(pid: 9, uid: 1000, gid: 100), groups: [], now: 0)
        harness.send(peer, .hello(Hello(slowConsumerPolicy: .backpressure, outputLimit: 65536, clientName: "panel")))
        let frames = harness.drain(peer)
        guard case .welcome(let welcome) = frames.first else {
            Issue.record("no WELCOME: \(frames)")
            return
        }
        #expect(welcome.version == 1)
        #expect(welcome.peerID == peer.peerID)
        #expect(welcome.credentials == PeerCredentials(pid: 9, uid: 1000, gid: 100))
        #expect(welcome.brokerPID == 4242 && welcome.brokerUID == 1000)
        #expect(welcome.outputLimit == 65536)
        #expect(welcome.slowConsumerPolicy == .backpressure)
        #expect(peer.name == "panel")
    }

    @Test func brokerDefaultPolicyAndLimitCap() {
        let harness = CoreHarness {
            $0.defaultSlowConsumerPolicy = .disconnect
            $0.outputLimit = 1 << 20
        }
        let peer = harness.core.connectPeer(credentials: PeerCredentials(pid: 9, uid: 0, gid: 0), groups: [], now: 0)
        harness.send(peer, .hello(Hello(slowConsumerPolicy: nil, outputLimit: UInt32(64 << 20), clientName: "x")))
        guard case .welcome(let welcome) = harness.drain(peer).first else {
            Issue.record("no WELCOME")
            return
        }
        #expect(welcome.slowConsumerPolicy == .disconnect)
        #expect(welcome.outputLimit == 1 << 20, "a client cannot raise its limit above the broker's")
    }

    @Test func otherUIDIsRefusedWithItsUID() {
        let harness = CoreHarness()
        let peer = harness.core.connectPeer(credentials: PeerCredentials(pid: 5, uid: 65534, gid: 65534), groups: [], now: 0)
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .notAuthorized)
        #expect(error?.isFatal == true)
        #expect(error?.message.contains("65534") == true)
        #expect(peer.state == .closing)
        #expect(harness.core.statistics.connectionsRefused == 1)
    }

    @Test func rootAndExtraUIDsAreAdmitted() {
        let harness = CoreHarness { $0.extraAllowedUIDs = [2000] }
        for uid: UInt32 in [0, 1000, 2000] {
            let peer = harness.connect(uid: uid)
            #expect(peer.state == .active)
        }
    }

    @Test func frameBeforeHelloIsFatal() {
        let harness = CoreHarness()
        let peer = harness.connect(hello: false)
        harness.publish(peer, "a/b", [1])
        let error = CoreHarness.firstError(harness.drain(peer))
        #expect(error?.knownCode == .handshakeRequired)
        #expect(error?.isFatal == true)
        #expect(peer.state == .closing)
    }

    @Test func secondHelloIsFatal() {
        let harness = CoreHarness()
        let peer = harness.connect()
        harness.send(peer, .hello(Hello(clientName: "again")))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .unexpectedFrame)
    }

    @Test func unsupportedVersionIsFatal() {
        let harness = CoreHarness()
        let peer = harness.connect(hello: false)
        harness.send(peer, .hello(Hello(minVersion: 2, maxVersion: 5, clientName: "future")))
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .unsupportedVersion)
    }

    @Test func helloWithoutMagicIsNotHerald() {
        let harness = CoreHarness()
        let peer = harness.connect(hello: false)
        var bytes = FrameEncoder.encode(.hello(Hello(clientName: "x")))
        bytes[8] = UInt8(ascii: "G")  // "GET " from a confused HTTP client, say
        harness.send(peer, bytes)
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .notHerald)
    }

    @Test func handshakeTimeout() {
        let harness = CoreHarness { $0.handshakeTimeout = 5 }
        let peer = harness.core.connectPeer(credentials: PeerCredentials(pid: 1, uid: 1000, gid: 1000), groups: [], now: 100)
        #expect(harness.core.expireDeadlines(now: 104).isEmpty)
        #expect(peer.state == .handshaking)
        _ = harness.core.expireDeadlines(now: 106)
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .handshakeTimeout)
    }

    @Test func connectionLimit() {
        let harness = CoreHarness { $0.maxConnections = 2 }
        _ = harness.connect()
        _ = harness.connect()
        let third = harness.connect(hello: false)
        #expect(CoreHarness.firstError(harness.drain(third))?.knownCode == .tooManyConnections)
    }

    @Test func goodbyeIsAnsweredThenClosed() {
        let harness = CoreHarness()
        let peer = harness.connect()
        harness.send(peer, .goodbye(Goodbye()))
        let frames = harness.drain(peer)
        guard case .goodbye = frames.last else {
            Issue.record("expected GOODBYE reply, got \(frames)")
            return
        }
        #expect(peer.state == .closing)
    }

    @Test func pingIsAnsweredWithSameToken() {
        let harness = CoreHarness()
        let peer = harness.connect()
        harness.send(peer, .ping(token: 0xDEAD_BEEF_0042))
        #expect(harness.drain(peer) == [.pong(token: 0xDEAD_BEEF_0042)])
    }

    @Test func shutdownSaysGoodbyeToEveryone() {
        let harness = CoreHarness()
        let peers = (0..<3).map { _ in harness.connect() }
        harness.core.beginShutdown(now: 0)
        for peer in peers {
            guard case .goodbye(let goodbye) = harness.drain(peer).last else {
                Issue.record("no GOODBYE")
                continue
            }
            #expect(goodbye.reason == ErrorCode.brokerShuttingDown.rawValue)
            // Still read (PROTOCOL.md §5.5): what it sent before it saw the GOODBYE counts.
            #expect(peer.state == .active && peer.pointee.drainingForShutdown)
        }
    }

    /// After its GOODBYE the broker routes nothing to a client but still handles what the
    /// client sent, until the client closes or the grace period ends.
    @Test func aStoppingBrokerHandlesWhatClientsSentUntilTheyClose() {
        let harness = CoreHarness { $0.shutdownGrace = 5 }
        let publisher = harness.connect()
        let subscriber = harness.connect()
        harness.subscribe(subscriber, "#", id: 1)
        let silent = harness.connect()
        harness.core.beginShutdown(now: 100)
        guard case .goodbye = harness.drain(subscriber).last else {
            Issue.record("no GOODBYE")
            return
        }
        _ = harness.drain(publisher)
        harness.send(publisher, .publish(Publish(topic: "state/x", payload: [1], retain: true)))
        #expect(harness.core.retained.count == 1, "stored: the next broker gets it")
        #expect(harness.drain(subscriber).isEmpty, "nothing routed after GOODBYE")
        harness.send(publisher, .subscribe(Subscribe(requestID: 7, subscriptionID: 2, filter: "a")))
        let refusal = CoreHarness.firstError(harness.drain(publisher))
        #expect(refusal?.knownCode == .brokerShuttingDown && refusal?.isFatal == false && refusal?.requestID == 7)
        // The client closes its side: the server may close the socket at once.
        #expect(harness.core.ended(publisher.pointee.slot, reason: "end of stream", now: 101))
        // One that never closes is closed when the grace period ends.
        _ = harness.drain(silent)
        #expect(harness.core.expireDeadlines(now: 104).isEmpty && silent.state == .active)
        let expired = harness.core.expireDeadlines(now: 105)
        #expect(silent.state == .closing)
        #expect(expired.isEmpty || expired == [silent.pointee.slot])
    }
}
