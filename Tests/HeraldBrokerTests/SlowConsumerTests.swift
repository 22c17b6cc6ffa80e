import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Slow consumers")
struct SlowConsumerTests {
    static let payload = [UInt8](repeating: 0xAB, count: 64)

    /// Encodes `count` PUBLISH frames on `topic` whose payload starts with a big-endian sequence number.
    static func burst(_ count: Int, topic: String = "load", from start: Int = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        for n in start..<start + count {
            var payload = payload
            payload[0] = UInt8(n >> 24 & 0xFF); payload[1] = UInt8(n >> 16 & 0xFF)
            payload[2] = UInt8(n >> 8 & 0xFF); payload[3] = UInt8(n & 0xFF)
            FrameEncoder.encode(.publish(Publish(topic: topic, payload: payload)), into: &bytes)
        }
        return bytes
    }

    static func sequence(_ payload: [UInt8]) -> Int {
        Int(payload[0]) << 24 | Int(payload[1]) << 16 | Int(payload[2]) << 8 | Int(payload[3])
    }

    @Test func dropPolicyCountsDropsAndNotifiesOnceCaughtUp() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let stalled = harness.connect(policy: .drop, outputLimit: 8192)
        let fast = harness.connect()
        harness.subscribe(stalled, "load", id: 1)
        harness.subscribe(fast, "load", id: 1)
        harness.send(publisher, Self.burst(1000))
        // The fast subscriber got everything; the stalled one stopped near its limit.
        #expect(CoreHarness.payloads(harness.drain(fast)).count == 1000)
        #expect(stalled.queuedOutput <= 8192)
        let frames = harness.drain(stalled)  // it catches up
        let received = CoreHarness.payloads(frames).count
        guard case .dropped(let notice) = frames.last else {
            Issue.record("no DROPPED notice after catching up: \(frames.suffix(2))")
            return
        }
        #expect(received + Int(notice.messages) == 1000, "every message is either delivered or counted")
        #expect(notice.messages > 0)
        #expect(harness.core.statistics.messagesDropped == notice.messages)
        #expect(stalled.totalDropped == notice.messages)
        // After the notice, delivery resumes in order.
        harness.send(publisher, Self.burst(3, from: 1000))
        #expect(CoreHarness.payloads(harness.drain(stalled)).map(Self.sequence) == [1000, 1001, 1002])
    }

    @Test func dropNoticePrecedesTheFirstMessageAfterTheGap() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let stalled = harness.connect(policy: .drop, outputLimit: 8192)
        harness.subscribe(stalled, "load", id: 1)
        harness.send(publisher, Self.burst(500))
        // Partially drain (as a socket would), below half the limit, then publish more.
        while stalled.queuedOutput > 2048 {
            let header = FrameHeader(loadingFrom: stalled.pointee.output.readPointer)
            stalled.pointee.output.consume(header.frameLength)
        }
        harness.core.didWrite(stalled)
        harness.send(publisher, Self.burst(1, from: 500))
        let frames = harness.drain(stalled)
        let noticeIndex = frames.firstIndex { if case .dropped = $0 { true } else { false } }
        let lastIndex = frames.lastIndex { if case .message = $0 { true } else { false } }
        #expect(noticeIndex != nil && lastIndex != nil && noticeIndex! < lastIndex!)
        #expect(CoreHarness.payloads(frames).last.map(Self.sequence) == 500)
    }

    @Test func disconnectPolicyClosesOnlyTheSlowSubscriberWithAReason() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let stalled = harness.connect(policy: .disconnect, outputLimit: 8192)
        let fast = harness.connect()
        harness.subscribe(stalled, "load", id: 1)
        harness.subscribe(fast, "load", id: 1)
        harness.send(publisher, Self.burst(1000))
        #expect(CoreHarness.payloads(harness.drain(fast)).count == 1000)
        #expect(stalled.state == .closing)
        let frames = harness.drain(stalled)
        let error = CoreHarness.firstError(frames)
        #expect(error?.knownCode == .slowConsumer && error?.isFatal == true)
        guard case .error = frames.last else {
            Issue.record("the ERROR must be the last frame")
            return
        }
        // Whole messages in order before it, no partial frame (drain would have failed).
        let sequences = CoreHarness.payloads(frames).map(Self.sequence)
        #expect(sequences == Array(0..<sequences.count))
        #expect(harness.core.statistics.slowConsumersDisconnected == 1)
    }

    @Test func disconnectKeepsTheFrameBeingWrittenWhole() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let stalled = harness.connect(policy: .disconnect, outputLimit: 8192)
        harness.subscribe(stalled, "load", id: 1)
        harness.send(publisher, Self.burst(50))
        // The socket took 10 bytes of the first frame.
        stalled.pointee.output.consume(10)
        harness.send(publisher, Self.burst(500, from: 50))
        #expect(stalled.state == .closing)
        // What remains must be the rest of frame 0 and then the ERROR.
        let firstLength = FrameHeader.size + 24 + 4 + 64
        #expect(stalled.queuedOutput > firstLength - 10)
        stalled.pointee.output.consume(firstLength - 10)
        let frames = harness.drain(stalled)
        #expect(frames.count == 1)
        #expect(CoreHarness.firstError(frames)?.knownCode == .slowConsumer)
    }

    @Test func backpressurePausesThePublisherAndLosesNothing() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let slow = harness.connect(policy: .backpressure, outputLimit: 8192)
        let bystander = harness.connect()
        harness.subscribe(slow, "load", id: 1)
        harness.subscribe(bystander, "load", id: 1)
        harness.send(publisher, Self.burst(1000))
        #expect(publisher.isReadPaused)
        #expect(publisher.hasBufferedInput, "the unrouted rest of the batch is kept")
        #expect(harness.core.statistics.publishersPaused == 1)
        var received: [Int] = []
        var rounds = 0
        while rounds < 1000 {
            rounds += 1
            received += CoreHarness.payloads(harness.drain(slow)).map(Self.sequence)
            if harness.core.resumed.contains(publisher.pointee.slot) {
                harness.core.endBatch()
                harness.core.processBufferedInput(publisher, now: harness.clock)
            } else if !publisher.isReadPaused && !publisher.hasBufferedInput {
                break
            }
        }
        received += CoreHarness.payloads(harness.drain(slow)).map(Self.sequence)
        #expect(received == Array(0..<1000))
        #expect(CoreHarness.payloads(harness.drain(bystander)).count == 1000)
        #expect(harness.core.statistics.messagesDropped == 0)
    }

    @Test func closingSubscriberReleasesPausedPublishers() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let slow = harness.connect(policy: .backpressure, outputLimit: 8192)
        harness.subscribe(slow, "load", id: 1)
        harness.send(publisher, Self.burst(1000))
        #expect(publisher.isReadPaused)
        harness.core.remove(slow, reason: "gone")
        #expect(!publisher.isReadPaused)
        #expect(harness.core.resumed.contains(publisher.pointee.slot))
    }

    @Test func outputStaysBoundedForAStalledDropSubscriber() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        let stalled = harness.connect(policy: .drop, outputLimit: 65536)
        harness.subscribe(stalled, "load", id: 1)
        for round in 0..<50 { harness.send(publisher, Self.burst(1000, from: round * 1000)) }
        #expect(stalled.queuedOutput <= 65536)
        #expect(stalled.outputCapacity <= 2 * (65536 + (1 << 20)))
    }

    @Test func peerThatNeverReadsRepliesIsCut() {
        let harness = CoreHarness { $0.controlReplyAllowance = 4096 }
        let peer = harness.connect(outputLimit: 4096)
        var bytes: [UInt8] = []
        for _ in 0..<2000 { FrameEncoder.encode(.ping(token: 1), into: &bytes) }
        harness.send(peer, bytes)
        #expect(peer.state == .closing)
        #expect(peer.queuedOutput < 4096 * 2 + 64)
        // It is told why, right after the replies it had not read.
        let frames = harness.drain(peer)
        #expect(frames.dropLast().allSatisfy { $0 == .pong(token: 1) })
        let last = frames.last?.errorBody
        #expect(last?.knownCode == .repliesNotRead && last?.isFatal == true)
        #expect(harness.core.statistics.repliesNotRead == 1)
    }
}
