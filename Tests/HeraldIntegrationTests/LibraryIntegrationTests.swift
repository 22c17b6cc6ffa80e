import Foundation
import Herald
import HeraldProtocol
import Synchronization
import Testing

/// The Swift client library against a real heraldd.
@Suite("Herald library", .timeLimit(.minutes(2)))
struct LibraryIntegrationTests {
    struct Battery: Codable, Equatable {
        var level: Int
        var charging: Bool
    }

    /// Takes messages from `subscription` until `count` arrived (or it ends).
    static func collect(_ subscription: Subscription, _ count: Int) async throws -> [Message] {
        var messages: [Message] = []
        for try await message in subscription {
            messages.append(message)
            if messages.count == count { break }
        }
        return messages
    }

    @Test func publishAndSubscribeWithVerifiedSender() async throws {
        let broker = try await BrokerProcess()
        let subscriber = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "panel"))
        let publisher = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "upower"))
        #expect(publisher.broker.pid == UInt32(broker.pid))
        let power = try await subscriber.subscribe("power/#")

        try await publisher.publish("power/battery", "87")
        try await publisher.publish("power/status", json: Battery(level: 87, charging: true))
        try await publisher.publish("power/raw", [0, 1, 2, 255])
        try await publisher.flush()

        let messages = try await Self.collect(power, 3)
        #expect(messages.map(\.topic) == ["power/battery", "power/status", "power/raw"])
        #expect(messages[0].string == "87")
        #expect(try messages[1].decode(Battery.self) == Battery(level: 87, charging: true))
        #expect(messages[2].payload == [0, 1, 2, 255])
        for message in messages {
            #expect(message.sender.peerID == publisher.peerID)
            #expect(message.sender.pid == UInt32(getpid()))
            #expect(message.sender.uid == UInt32(getuid()))
            #expect(message.sender.gid == UInt32(getgid()))
            #expect(message.droppedBefore == 0)
        }
        await publisher.close()
        await subscriber.close()
        #expect(broker.log.contains("name=panel"), "the broker logs client names")
    }

    @Test func wildcardRoutingAndLocalDispatch() async throws {
        let broker = try await BrokerProcess()
        let bus = try await Bus.connect(to: broker.address)
        let other = try await Bus.connect(to: broker.address)
        // Overlapping filters on one connection: the broker sends each message once, the
        // library hands it to every matching subscription.
        let plus = try await bus.subscribe("home/+/temp")
        let hash = try await bus.subscribe("home/#")
        let exact = try await other.subscribe("home/kitchen/temp")
        let everything = try await other.subscribe("#")

        let topics = ["home/kitchen/temp", "home/kitchen/light", "home", "home/attic/temp", "garden/temp", "home/a/b/temp"]
        for topic in topics { try await bus.publish(topic, topic) }
        try await bus.flush()

        #expect(try await Self.collect(plus, 2).map(\.topic) == ["home/kitchen/temp", "home/attic/temp"])
        #expect(try await Self.collect(hash, 5).map(\.topic) == ["home/kitchen/temp", "home/kitchen/light", "home", "home/attic/temp", "home/a/b/temp"])
        #expect(try await Self.collect(exact, 1).map(\.topic) == ["home/kitchen/temp"])
        #expect(try await Self.collect(everything, 6).map(\.topic) == topics)
        await bus.close()
        await other.close()
    }

    @Test func fiftyConcurrentClients() async throws {
        let broker = try await BrokerProcess()
        let clients = 50
        let buses = try await withThrowingTaskGroup(of: Bus.self) { group in
            for n in 0..<clients { group.addTask { try await Bus.connect(to: broker.address, options: BusOptions(clientName: "client-\(n)")) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        var subscriptions: [Subscription] = []
        for bus in buses { subscriptions.append(try await bus.subscribe("chat/#")) }
        // Everyone publishes at once, then everyone must see all 50 messages, each
        // publisher's in order.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, bus) in buses.enumerated() {
                group.addTask {
                    for k in 0..<10 { try await bus.publish("chat/\(n)", "\(k)") }
                    try await bus.flush()
                }
            }
            try await group.waitForAll()
        }
        let results = try await withThrowingTaskGroup(of: [Message].self) { group in
            for subscription in subscriptions { group.addTask { try await Self.collect(subscription, clients * 10) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for received in results {
            #expect(received.count == clients * 10)
            for n in 0..<clients {
                let fromN = received.filter { $0.topic == "chat/\(n)" }.compactMap(\.string)
                #expect(fromN == (0..<10).map(String.init))
            }
        }
        for bus in buses { await bus.close() }
    }

    @Test func flushMeansRouted() async throws {
        let broker = try await BrokerProcess()
        let (raw, _) = try RawConnection.handshake(broker.address, name: "raw-subscriber")
        try raw.subscribe("bulk", id: 1)
        let bus = try await Bus.connect(to: broker.address)
        let count = 20_000
        for n in 0..<count { try await bus.publish("bulk", withUnsafeBytes(of: UInt32(n).bigEndian, Array.init)) }
        try await bus.flush()
        // After flush the broker has routed all of them: they are already queued for the raw subscriber.
        let received = try await BlockingWork.run {
            var sequences: [UInt32] = []
            while sequences.count < count {
                guard let payload = try raw.readFrame(timeout: 10)?.messagePayload else { continue }
                sequences.append(payload.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) })
            }
            return sequences
        }
        #expect(received == (0..<UInt32(count)).map { $0 })
        await bus.close()
    }

    @Test func typedErrors() async throws {
        let broker = try await BrokerProcess(["--max-subscriptions", "2"])
        let bus = try await Bus.connect(to: broker.address)
        await #expect(throws: HeraldError.self) { try await bus.publish("a//b", "x") }
        do {
            try await bus.publish("$SYS/clock", "x")
            Issue.record("publishing a $ topic must fail")
        } catch {
            guard case .invalidTopic = error else { Issue.record("got \(error)"); return }
        }
        do {
            _ = try await bus.subscribe("a/#/b")
            Issue.record("an invalid filter must fail")
        } catch {
            guard case .invalidFilter = error else { Issue.record("got \(error)"); return }
        }
        // Held: dropping a Subscription unsubscribes.
        let one = try await bus.subscribe("one")
        let two = try await bus.subscribe("two")
        defer { _ = (one, two) }
        do {
            _ = try await bus.subscribe("three")
            Issue.record("the broker's subscription limit must be enforced")
        } catch {
            #expect(error == .tooManySubscriptions)
        }
        do {
            _ = try await Bus.connect(to: TestEnvironment.uniqueAddress("nobody-home"))
            Issue.record("connecting to nothing must fail")
        } catch {
            guard case .brokerUnreachable = error else { Issue.record("got \(error)"); return }
        }
        await bus.close()
    }

    @Test func subscriptionsEndWhenTheBrokerStops() async throws {
        let broker = try await BrokerProcess()
        // Without reconnection (see ReconnectIntegrationTests for the default).
        let bus = try await Bus.connect(to: broker.address, options: BusOptions(reconnect: nil))
        let subscription = try await bus.subscribe("x")
        let events = bus.events()
        #expect(await broker.stop() == 0)
        var iterated = 0
        do {
            for try await _ in subscription { iterated += 1 }
        } catch {
            // Ending with the broker's reason is also acceptable; hanging is not.
        }
        #expect(iterated == 0)
        var sawDisconnect = false
        for await event in events {
            if case .disconnected = event { sawDisconnect = true }
        }
        #expect(sawDisconnect)
        #expect(!bus.isConnected)
        await bus.close()
    }

    @Test func droppedMessagesAreReportedNotSilent() async throws {
        let broker = try await BrokerProcess(["--output-limit", "64K"])
        var options = BusOptions(clientName: "slow")
        options.slowConsumerPolicy = .drop
        options.subscriptionBufferLimit = 64 << 10
        let slow = try await Bus.connect(to: broker.address, options: options)
        let subscription = try await slow.subscribe("flood")
        let events = slow.events()
        // A raw publisher floods while the subscriber's task is not iterating.
        let total = 100_000
        let address = broker.address
        try await BlockingWork.run {
            let (publisher, _) = try RawConnection.handshake(address, name: "flood")
            var batch: [UInt8] = []
            for n in 0..<total {
                FrameEncoder.encode(.publish(Publish(topic: "flood", payload: withUnsafeBytes(of: UInt32(n).bigEndian, Array.init) + [UInt8](repeating: 1, count: 60))), into: &batch)
            }
            publisher.send(batch)
            try publisher.sync()
        }
        // Consume, while a second client publishes numbered 4-byte markers until one gets
        // through: markers that met a full queue are dropped (and counted) like the flood.
        let done = DoneFlag()
        let consumer = Task {
            defer { done.set() }
            var flood = 0
            var droppedBefore: UInt64 = 0
            for try await message in subscription {
                droppedBefore += message.droppedBefore
                if message.payload.count == 4 {
                    let marker = message.payload.withUnsafeBytes { UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self)) }
                    return (flood, droppedBefore, Int(marker))
                }
                flood += 1
            }
            return (flood, droppedBefore, -1)
        }
        let markers = try await Bus.connect(to: broker.address)
        var sent: UInt32 = 0
        while !done.isSet {
            try await markers.publish("flood", withUnsafeBytes(of: sent.bigEndian, Array.init))
            try await markers.flush()
            sent += 1
            if sent > 2000 { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        let (flood, droppedBefore, marker) = try await consumer.value
        #expect(marker >= 0)
        #expect(droppedBefore > 0, "the stall outlasted the limits")
        // Everything published before the first marker that arrived was delivered or counted.
        #expect(UInt64(flood) + droppedBefore == UInt64(total + marker), "flood \(flood), dropped \(droppedBefore), marker \(marker)")
        await markers.close()
        await slow.close()
        var reported: UInt64 = 0
        for await event in events {
            if case .messagesDropped(let count, _) = event { reported += count }
        }
        #expect(reported >= droppedBefore, "the events stream reports every drop notice")
    }
}

/// Set once by one task, read by another.
final class DoneFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
