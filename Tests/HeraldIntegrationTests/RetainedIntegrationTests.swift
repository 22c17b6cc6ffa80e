import Foundation
import Herald
import Testing

/// Retained messages end to end: the library and the CLI against a real heraldd.
@Suite("Retained messages end to end", .timeLimit(.minutes(1)))
struct RetainedIntegrationTests {
    @Test func aSubscriberStartedLaterSeesTheCurrentValueFirst() async throws {
        let broker = try await BrokerProcess()
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
        let broker = try await BrokerProcess(["--max-retained-per-uid", "1"])
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
        let broker = try await BrokerProcess()
        let (status, _, errors) = try await CLIProcess.run(["pub", "--address", broker.address, "--retain", "session/locked", "yes"])
        #expect(status == 0, "\(errors)")
        let subscriber = try await CLIIntegrationTests.startSubscriber(broker, ["session/#"], extra: ["--json"])
        let line = await subscriber.waitForLine(timeout: 10) { $0.contains("session/locked") }
        #expect(line?.contains("\"retained\":true") == true, "\(line ?? subscriber.standardError)")
        let human = try await CLIIntegrationTests.startSubscriber(broker, ["session/#"])
        let humanLine = await human.waitForLine(timeout: 10) { $0.contains("session/locked") }
        #expect(humanLine?.hasPrefix("session/locked yes  (retained)") == true, "\(humanLine ?? human.standardError)")
    }
}

/// Retained messages survive a broker restart: in a state file, and in the service
/// manager's file-descriptor store (PROTOCOL.md §4.10; README "Retained state").
@Suite("Retained state across restarts", .timeLimit(.minutes(2)))
struct RetainedRestartTests {
    static let topics = 2000
    static let publishes = 3000
    static let restartAt = 2500

    /// Publishes `publishes` retained messages round-robin over `topics` topics (value = the
    /// publish's index), calling `restart` once `restartAt` of them are queued; then flushes,
    /// which waits for the reconnect. Returns the value each topic must hold: the last one
    /// published. The messages just before the restart (in the client's buffer, in the socket
    /// or in the broker) are their topics' last values, so losing any of them would show.
    /// Halfway to the restart it waits until the broker has routed what came before, so the
    /// first broker surely holds retained messages to hand over (publishes are buffered: it
    /// could otherwise be stopped before it read any).
    private static func burst(on bus: Bus, restart: () async throws -> Void) async throws -> [String: String] {
        var expected: [String: String] = [:]
        for index in 0..<publishes {
            let topic = "burst/\(index % topics)"
            try await bus.publish(topic, "\(index)", retain: true)
            expected[topic] = "\(index)"
            if index == restartAt / 2 { try await bus.flush() }
            if index == restartAt { try await restart() }
        }
        try await bus.flush(timeout: .seconds(20))
        return expected
    }

    /// The retained messages a new subscriber to `burst/#` gets first, by topic. With
    /// `allRestored`, every one must come from an earlier broker process: its sender's peer
    /// id is 0 (that process's ids would name connections of this one), its uid kept.
    private static func retained(at address: String, allRestored: Bool = false) async throws -> [String: String] {
        let reader = try await Bus.connect(to: address, options: BusOptions(clientName: "after-restart"))
        defer { Task { await reader.close() } }
        let subscription = try await reader.subscribe("burst/#")
        // Retained messages come before anything published after the SUBSCRIBE: once this
        // marker arrives, every retained one has (so a missing topic fails, not hangs).
        try await reader.publish("burst/end-marker", "")
        try await reader.flush()
        var messages: [Message] = []
        for try await message in subscription {
            if message.topic == "burst/end-marker" { break }
            messages.append(message)
        }
        #expect(messages.allSatisfy { $0.isRetained && $0.sender.uid == UInt32(getuid()) })
        if allRestored { #expect(messages.allSatisfy { $0.sender.peerID == 0 }) }
        return Dictionary(messages.map { ($0.topic, $0.string ?? "") }, uniquingKeysWith: { _, last in last })
    }

    @Test func aStateFileKeepsEveryRetainedMessageThroughARestartMidBurst() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-state-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stateFile = directory.appendingPathComponent("retained").path
        var broker = try await BrokerProcess(["--state-file", stateFile], purpose: "state-file")
        let address = broker.address
        let publisher = try await Bus.connect(to: address, options: BusOptions(clientName: "burst"))
        defer { Task { await publisher.close() } }
        var restarted: BrokerProcess?
        let expected = try await Self.burst(on: publisher) {
            #expect(await broker.stop() == 0)
            restarted = try await BrokerProcess(["--state-file", stateFile], purpose: "state-file", exactAddress: address)
        }
        broker = try #require(restarted)
        #expect(broker.log.contains("retained messages restored"), "\(broker.log)")
        #expect(try await Self.retained(at: address) == expected)

        // And once more, with nothing published in between: the second broker saved at stop.
        #expect(await broker.stop() == 0)
        let third = try await BrokerProcess(["--state-file", stateFile], purpose: "state-file", exactAddress: address)
        #expect(try await Self.retained(at: address, allRestored: true) == expected)
        _ = third
    }

    @Test func theDescriptorStoreKeepsThemThroughARestartMidBurstAndACrash() async throws {
        let manager = try ServiceManager(purpose: "fdstore")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let publisher = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "burst"))
        defer { Task { await publisher.close() } }
        var second: ServiceManager.Instance?
        let expected = try await Self.burst(on: publisher) {
            #expect(await first.stop() == 0)
            second = try manager.start()
        }
        let running = try #require(second)
        let storedAlready = manager.notify.stored.isEmpty == false
        #expect(storedAlready ? true : await manager.notify.waitFor(timeout: 5) { $0.contains("FDSTORE=1") })
        #expect(try await Self.retained(at: manager.address) == expected)
        #expect(running.log.contains("from=the service manager's descriptor store"), "\(running.log)")

        // A crash: what the broker saved (within a second of the last change) comes back.
        try await publisher.publish("burst/0", "after", retain: true)
        try await publisher.flush()
        #expect(await Self.waitUntilStored(Array("after".utf8), in: manager.notify), "the change was saved within a second or so")
        #expect(await running.stop(signal: SIGKILL) == 128 + SIGKILL)
        let afterCrash = try manager.start()
        var survived = expected
        survived["burst/0"] = "after"
        #expect(try await Self.retained(at: manager.address, allRestored: true) == survived)
        #expect(await afterCrash.stop() == 0)
        #expect(manager.notify.stored.count <= 1, "one snapshot in the store, not one per save")
    }

    /// Waits (up to 10 s) until the snapshot in the descriptor store contains `bytes`.
    private static func waitUntilStored(_ bytes: [UInt8], in notify: NotifySocket) async -> Bool {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let fd = notify.duplicateStored().last?.fd {
                defer { close(fd) }
                var info = stat()
                fstat(fd, &info)
                var content = [UInt8](repeating: 0, count: Int(info.st_size))
                let n = content.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
                if n == content.count, content.firstRange(of: bytes) != nil { return true }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    @Test func aDamagedStateFileIsSetAsideAndTheBrokerStarts() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-state-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stateFile = directory.appendingPathComponent("retained").path
        try Data("HRLDRET1 and then something else".utf8).write(to: URL(fileURLWithPath: stateFile))
        let broker = try await BrokerProcess(["--state-file", stateFile], purpose: "damaged-state")
        #expect(broker.log.contains("the retained state file cannot be read"), "\(broker.log)")
        #expect(FileManager.default.fileExists(atPath: stateFile + ".corrupt"))
        let bus = try await Bus.connect(to: broker.address)
        try await bus.publish("state/ok", "1", retain: true)
        try await bus.flush()
        await bus.close()
        #expect(await broker.stop() == 0)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: stateFile)))
        #expect(bytes.starts(with: Array("HRLDRET1".utf8)), "the next save wrote a good file")
    }
}
