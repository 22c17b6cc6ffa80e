import Foundation
import HeraldProtocol
import Testing

/// A subscriber that stops reading, in each slow-consumer mode, against a real heraldd:
/// the publisher is never blocked by a `drop` or `disconnect` subscriber, the fast
/// subscriber receives everything, the stalled one gets exactly what its mode promises,
/// and the broker's memory stays bounded.
@Suite("heraldd: slow consumers", .timeLimit(.minutes(2)))
struct SlowConsumerIntegrationTests {
    static let messageCount = 100_000
    static let outputLimit = 256 << 10

    static func payload(_ n: Int) -> [UInt8] {
        withUnsafeBytes(of: UInt32(n).bigEndian, Array.init) + [UInt8](repeating: 0x5A, count: 60)
    }

    static func sequence(_ payload: [UInt8]) -> Int {
        Int(payload[0]) << 24 | Int(payload[1]) << 16 | Int(payload[2]) << 8 | Int(payload[3])
    }

    /// Publishes `messageCount` 64-byte messages on "load" from its own thread; returns when
    /// the broker has routed them all (PING/PONG).
    static func publishAll(_ address: String) async throws {
        try await BlockingWork.run {
            let (publisher, _) = try RawConnection.handshake(address, name: "publisher")
            var batch: [UInt8] = []
            for n in 0..<messageCount {
                FrameEncoder.encode(.publish(Publish(topic: "load", payload: payload(n))), into: &batch)
                if batch.count > 64 << 10 {
                    guard publisher.send(batch) else { throw RawConnectionError.closed }
                    batch.removeAll(keepingCapacity: true)
                }
            }
            publisher.send(batch)
            try publisher.sync(token: 1)
        }
    }

    /// Reads `count` messages on its own thread and returns their sequence numbers.
    static func receive(_ connection: RawConnection, count: Int) async throws -> [Int] {
        try await BlockingWork.run {
            var sequences: [Int] = []
            sequences.reserveCapacity(count)
            while sequences.count < count {
                guard let frame = try connection.readFrame(timeout: 30) else { break }
                if let payload = frame.messagePayload { sequences.append(Self.sequence(payload)) }
            }
            return sequences
        }
    }

    struct Scene {
        let broker: BrokerProcess
        let fast: RawConnection
        let stalled: RawConnection
        let baselineRSS: Int
    }

    static func scene(_ policy: SlowConsumerPolicy) async throws -> Scene {
        let broker = try await BrokerProcess(["--output-limit", "\(outputLimit)"], purpose: "slow-\(policy)", logLevel: "debug")
        // The fast subscriber asks for backpressure: it must see everything however the
        // machine schedules it, and it paces the publisher. The stalled one never reads.
        let (fast, _) = try RawConnection.handshake(broker.address, name: "fast", policy: .backpressure)
        try fast.subscribe("load", id: 1)
        let (stalled, welcome) = try RawConnection.handshake(broker.address, name: "stalled", policy: policy)
        #expect(welcome.slowConsumerPolicy == policy)
        stalled.shrinkReceiveBuffer()
        try stalled.subscribe("load", id: 1)
        return Scene(broker: broker, fast: fast, stalled: stalled, baselineRSS: ProcessInspector.residentBytes(broker.pid))
    }

    /// RSS may grow by the stalled subscriber's output limit plus a small constant, never by the backlog.
    static func expectBoundedMemory(_ scene: Scene) {
        let rss = ProcessInspector.residentBytes(scene.broker.pid)
        let backlog = messageCount * (64 + 36)
        #expect(rss - scene.baselineRSS < outputLimit * 2 + (8 << 20), "RSS grew from \(scene.baselineRSS) to \(rss); the backlog is \(backlog) bytes")
    }

    @Test func dropModeLosesNothingSilently() async throws {
        let scene = try await Self.scene(.drop)
        async let fastReceived = Self.receive(scene.fast, count: Self.messageCount)
        try await Self.publishAll(scene.broker.address)
        #expect(try await fastReceived == Array(0..<Self.messageCount), "the fast subscriber gets everything in order")
        Self.expectBoundedMemory(scene)

        // The stalled subscriber wakes up: what it gets plus what it is told it lost adds up.
        let (stalled, broker) = (scene.stalled, scene.broker)
        let (sequences, dropped) = try await BlockingWork.run {
            var sequences: [Int] = []
            var dropped: UInt64 = 0
            // Read the backlog; the notice comes once it has drained. Then a marker message
            // shows delivery resumes after the gap.
            while true {
                guard let frame = try stalled.readFrame() else { throw RawConnectionError.closed }
                if let payload = frame.messagePayload { sequences.append(Self.sequence(payload)) }
                if case .dropped(let notice) = frame {
                    dropped += notice.messages
                    #expect(notice.bytes == notice.messages * UInt64(8 + 24 + 4 + 64))
                    break
                }
            }
            let (publisher, _) = try RawConnection.handshake(broker.address, name: "marker")
            publisher.send(.publish(Publish(topic: "load", payload: Self.payload(Self.messageCount))))
            try publisher.sync()
            while sequences.last != Self.messageCount {
                guard let frame = try stalled.readFrame() else { throw RawConnectionError.closed }
                if let payload = frame.messagePayload { sequences.append(Self.sequence(payload)) }
                if case .dropped(let notice) = frame { dropped += notice.messages }
            }
            return (sequences, dropped)
        }
        #expect(dropped > 0, "the stall outlasted the output limit")
        #expect(UInt64(sequences.count - 1) + dropped == UInt64(Self.messageCount))
        #expect(sequences == sequences.sorted(), "what arrives is in order")
        #expect(scene.broker.log.contains("dropping"), "the broker logs the drops")
    }

    @Test func disconnectModeClosesWithAReason() async throws {
        let scene = try await Self.scene(.disconnect)
        async let fastReceived = Self.receive(scene.fast, count: Self.messageCount)
        let address = scene.broker.address
        let publishing = Task { try await Self.publishAll(address) }
        // The stalled subscriber reads once the broker says it cut it off: the broker lingers
        // (30 s) for it to read why, which a slow machine may take longer than to publish all.
        let deadline = Date().addingTimeInterval(60)
        while !scene.broker.log.contains("disconnecting slow consumer") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let stalled = scene.stalled
        let frames = try await BlockingWork.run { try stalled.readUntilClosed() }
        try await publishing.value
        #expect(try await fastReceived == Array(0..<Self.messageCount))
        Self.expectBoundedMemory(scene)
        let sequences = frames.compactMap(\.messagePayload).map(Self.sequence)
        #expect(sequences == Array(0..<sequences.count), "whole messages, in order, up to the cut")
        let error = frames.last?.errorBody
        #expect(error?.knownCode == .slowConsumer && error?.isFatal == true)
        #expect(scene.broker.log.contains("disconnecting slow consumer"))
    }

    @Test func backpressureModeDeliversEverything() async throws {
        let scene = try await Self.scene(.backpressure)
        async let fastReceived = Self.receive(scene.fast, count: Self.messageCount)
        let address = scene.broker.address
        let publishing = Task { try await Self.publishAll(address) }
        // The stalled subscriber starts reading only once the broker says it paused the publisher.
        let deadline = Date().addingTimeInterval(30)
        while !scene.broker.log.contains("pausing publisher") && Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(scene.broker.log.contains("pausing publisher"))
        Self.expectBoundedMemory(scene)
        let stalledReceived = try await Self.receive(scene.stalled, count: Self.messageCount)
        try await publishing.value
        #expect(stalledReceived == Array(0..<Self.messageCount), "nothing lost, nothing reordered")
        #expect(try await fastReceived == Array(0..<Self.messageCount))
        Self.expectBoundedMemory(scene)
    }
}
