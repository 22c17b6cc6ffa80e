import Foundation
import Herald
import HeraldProtocol
import Testing

/// Presence events and last wills end to end, against a real heraldd.
@Suite("Presence and last wills end to end", .timeLimit(.minutes(1)))
struct PresenceIntegrationTests {
    static func event(_ message: Message) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(message.payload))) as? [String: Any] ?? [:]
    }

    @Test func servicesSeePeersComeAndGoAndACrashedPeersWill() async throws {
        let broker = try await BrokerProcess()
        let watcher = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "watcher"))
        defer { Task { await watcher.close() } }
        let presence = try await watcher.subscribe(["$SYS/peers/#", "service/state"])
        var received = presence.makeAsyncIterator()

        // A library client with a retained will: connected, then a clean close (no will).
        let service = try await Bus.connect(
            to: broker.address,
            options: BusOptions(clientName: "battery-service", lastWill: LastWill(topic: "service/state", "offline", retain: true)))
        try await service.flush()  // the broker accepted the will
        let connected = try #require(try await received.next())
        #expect(connected.topic == "$SYS/peers/connected")
        #expect(Self.event(connected)["name"] as? String == "battery-service")
        #expect(Self.event(connected)["peer"] as? Int == Int(service.peerID))
        #expect(connected.sender.peerID == 0 && connected.sender.pid == UInt32(broker.pid), "published by the broker")
        await service.close()
        let left = try #require(try await received.next())
        #expect(left.topic == "$SYS/peers/disconnected" && Self.event(left)["reason"] as? String == "client said goodbye")

        // A client that dies without GOODBYE: its will, then its departure.
        let crashing = try RawConnection(broker.address)
        crashing.send(.hello(Hello(capabilities: Capabilities.lastWill, clientName: "crashing")))
        guard case .welcome(let welcome) = try crashing.readFrame() else { throw RawConnectionError.unexpected("no WELCOME") }
        crashing.send(.will(Will(requestID: 9, topic: "service/state", payload: Array("offline".utf8), retain: true)))
        #expect(try crashing.readFrame() == .ok(requestID: 9))
        #expect(try #require(try await received.next()).topic == "$SYS/peers/connected")
        crashing.closeNow(reset: true)
        let will = try #require(try await received.next())
        #expect(will.topic == "service/state" && will.string == "offline" && will.sender.peerID == welcome.peerID)
        let gone = try #require(try await received.next())
        #expect(gone.topic == "$SYS/peers/disconnected" && Self.event(gone)["peer"] as? Int == Int(welcome.peerID))

        // The will was retained: a later subscriber sees the service as offline at once.
        let late = try await watcher.subscribe("service/state")
        let current = try #require(try await LibraryIntegrationTests.collect(late, 1).first)
        #expect(current.isRetained && current.string == "offline")
    }

    @Test func aWillTheBrokerRefusesIsReportedByFlush() async throws {
        let broker = try await BrokerProcess()
        let bus = try await Bus.connect(
            to: broker.address, options: BusOptions(clientName: "bad-will", lastWill: LastWill(topic: "$SYS/mine", "x")))
        defer { Task { await bus.close() } }
        do {
            try await bus.flush()
            Issue.record("a will on a reserved topic was accepted")
        } catch {
            #expect("\(error)".contains("reserved"), "\(error)")
        }
    }
}
