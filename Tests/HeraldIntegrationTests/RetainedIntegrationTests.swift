import Foundation
import Herald
import Testing

/// Retained messages end to end: the library and the CLI against a real heraldd.
@Suite("Retained messages end to end", .timeLimit(.minutes(1)))
struct RetainedIntegrationTests {
    @Test func aSubscriberStartedLaterSeesTheCurrentValueFirst() async throws {
        let broker = try BrokerProcess()
        let service = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "battery-service"))
        defer { Task { await service.close() } }
        let before = Date()
        try await service.publish("power/battery", "87", retain: true)
        try await service.publish("power/ac", "online", retain: true)
        try await service.flush()

        let panel = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "panel"))
        defer { Task { await panel.close() } }
        let power = try await panel.subscribe("power/#")
        try await service.publish("power/battery", "86")
        try await service.flush()
        let messages = try await LibraryIntegrationTests.collect(power, 3)
        #expect(messages.map(\.topic) == ["power/ac", "power/battery", "power/battery"])
        #expect(messages.map { $0.string ?? "" } == ["online", "87", "86"])
        #expect(messages.map(\.isRetained) == [true, true, false])
        let retainedAt = try #require(messages[0].retainedAt)
        #expect(retainedAt >= before.addingTimeInterval(-1) && retainedAt <= Date().addingTimeInterval(1))
        #expect(messages[0].sender.pid == UInt32(getpid()) && messages[0].sender.uid == UInt32(getuid()))

        // An empty retained publish clears it: the next subscriber sees only what is left.
        try await service.publish("power/ac", "", retain: true)
        try await service.flush()
        let late = try await panel.subscribe("power/ac")
        try await service.publish("power/ac", "offline")
        try await service.flush()
        let next = try await LibraryIntegrationTests.collect(late, 1)
        #expect(next.map(\.isRetained) == [false] && next.first?.string == "offline")
    }

    @Test func overTheQuotaFlushThrowsAndNothingIsStored() async throws {
        let broker = try BrokerProcess(["--max-retained-per-uid", "1"])
        let service = try await Bus.connect(to: broker.address)
        defer { Task { await service.close() } }
        try await service.publish("state/a", "1", retain: true)
        try await service.publish("state/b", "2", retain: true)
        await #expect {
            try await service.flush()
        } throws: { error in
            guard case .retainedQuotaExceeded(let message) = error as? HeraldError else { return false }
            return message.contains("its maximum of 1")
        }
        #expect(broker.log.contains("retained_quota_exceeded") || broker.log.contains("retained quota exceeded"), "\(broker.log)")
        let reader = try await Bus.connect(to: broker.address)
        defer { Task { await reader.close() } }
        let state = try await reader.subscribe("state/#")
        try await service.publish("state/z", "live")
        try await service.flush()
        let messages = try await LibraryIntegrationTests.collect(state, 2)
        #expect(messages.map { $0.string ?? "" } == ["1", "live"])
        #expect(messages.map(\.isRetained) == [true, false])
    }

    @Test func theCLIRetainsAndMarksRetainedMessages() async throws {
        let broker = try BrokerProcess()
        let (status, _, errors) = try CLIProcess.run(["pub", "--address", broker.address, "--retain", "session/locked", "yes"])
        #expect(status == 0, "\(errors)")
        let subscriber = try await CLIIntegrationTests.startSubscriber(broker, ["session/#"], extra: ["--json"])
        let line = subscriber.waitForLine(timeout: 10) { $0.contains("session/locked") }
        #expect(line?.contains("\"retained\":true") == true, "\(line ?? subscriber.standardError)")
        let human = try await CLIIntegrationTests.startSubscriber(broker, ["session/#"])
        let humanLine = human.waitForLine(timeout: 10) { $0.contains("session/locked") }
        #expect(humanLine?.hasPrefix("session/locked yes  (retained)") == true, "\(humanLine ?? human.standardError)")
    }
}
