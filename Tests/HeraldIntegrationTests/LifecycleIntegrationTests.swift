import Foundation
import HeraldProtocol
import Testing

@Suite("heraldd: connections and lifecycle", .timeLimit(.minutes(2)))
struct LifecycleIntegrationTests {
    @Test func thousandAbruptDisconnectsLeakNoDescriptors() async throws {
        let broker = try await BrokerProcess()
        let (watcher, _) = try RawConnection.handshake(broker.address, name: "watcher")
        try watcher.subscribe("load/#", id: 1)
        try watcher.sync()
        let baseline = ProcessInspector.openFileDescriptors(broker.pid)
        #expect(baseline > 0)

        var stream = FrameEncoder.encode(.hello(Hello(clientName: "abrupt")))
        stream += FrameEncoder.encode(.subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "load/#")))
        for n in 0..<4 { stream += FrameEncoder.encode(.publish(Publish(topic: "load/\(n)", payload: [UInt8](repeating: 7, count: 100)))) }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<1000 {
            let connection = try RawConnection(broker.address)
            // Cut the stream at any byte: inside HELLO, between frames, inside a PUBLISH.
            let cut = round < stream.count ? round : Int.random(in: 0...stream.count, using: &generator)
            connection.send(Array(stream.prefix(cut)))
            connection.closeNow(reset: round % 2 == 0)
        }
        // Every whole PUBLISH that got through was routed; the broker is fine.
        try watcher.sync(token: 5)
        var descriptors = ProcessInspector.openFileDescriptors(broker.pid)
        let deadline = Date().addingTimeInterval(10)
        while descriptors != baseline && Date() < deadline {
            try watcher.sync(token: 6)  // a round trip through the event loop, not a sleep
            descriptors = ProcessInspector.openFileDescriptors(broker.pid)
        }
        #expect(descriptors == baseline, "broker fds: \(descriptors), baseline \(baseline)")
        #expect(broker.process.isRunning)
    }

    @Test func sigtermFlushesQueuedMessagesSaysGoodbyeAndExitsZero() async throws {
        let broker = try await BrokerProcess()
        let (subscriber, _) = try RawConnection.handshake(broker.address, name: "slow-reader", policy: .backpressure)
        subscriber.shrinkReceiveBuffer()
        try subscriber.subscribe("data", id: 1)
        let (publisher, _) = try RawConnection.handshake(broker.address, name: "writer")
        let count = 20_000
        var batch: [UInt8] = []
        for n in 0..<count { FrameEncoder.encode(.publish(Publish(topic: "data", payload: withUnsafeBytes(of: UInt32(n).bigEndian, Array.init))), into: &batch) }
        publisher.send(batch)
        // Everything is routed (queued for the subscriber, which has read nothing yet).
        try publisher.sync()
        kill(broker.pid, SIGTERM)
        let frames = try subscriber.readUntilClosed()
        let payloads = frames.compactMap(\.messagePayload)
        #expect(payloads.count == count, "every queued message is delivered before the broker exits")
        #expect(payloads.last == withUnsafeBytes(of: UInt32(count - 1).bigEndian, Array.init))
        guard case .goodbye(let goodbye) = frames.last else {
            Issue.record("expected GOODBYE last, got \(String(describing: frames.last))")
            return
        }
        #expect(goodbye.reason == ErrorCode.brokerShuttingDown.rawValue)
        #expect(await broker.waitForExit(timeout: 15) == 0)
        #expect(broker.log.contains("stopping"))
    }

    @Test func sigintExitsZeroWithNoPeers() async throws {
        let broker = try await BrokerProcess()
        #expect(await broker.stop(signal: SIGINT) == 0)
    }

    /// `--help` names defaults as a person types them (the policy by name, not its wire value).
    @Test func helpShowsDefaultsByName() throws {
        let help = Process()
        help.executableURL = URL(fileURLWithPath: TestEnvironment.heralddPath)
        help.arguments = ["--help"]
        let output = Pipe()
        help.standardOutput = output
        try help.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        help.waitUntilExit()
        let policy = text.components(separatedBy: "--slow-consumer <policy>").dropFirst().first ?? ""
        #expect(policy.prefix(300).contains("default: drop"), "\(text)")
        #expect(text.contains("--frame-timeout") && text.contains("--partial-input-budget") && text.contains("--max-handshaking-per-uid"))
    }

    @Test func secondBrokerOnTheSameAddressRefusesToStart() async throws {
        let broker = try await BrokerProcess()
        let second = Process()
        second.executableURL = URL(fileURLWithPath: TestEnvironment.heralddPath)
        second.arguments = ["--address", broker.address]
        let errors = Pipe()
        second.standardError = errors
        try second.run()
        second.waitUntilExit()
        #expect(second.terminationStatus != 0)
        let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("already listening"))
    }

    @Test func filesystemPathAddressReplacesOnlyAStaleSocket() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("bus.sock").path
        do {
            let broker = try await BrokerProcess(["--address", path])
            let (client, welcome) = try RawConnection.handshake(path)
            #expect(welcome.brokerPID == UInt32(broker.pid))
            client.closeNow()
            // Killed without cleanup: the socket file stays behind, stale.
            _ = await broker.stop(signal: SIGKILL)
        }
        #expect(FileManager.default.fileExists(atPath: path))
        let restarted = try await BrokerProcess(["--address", path])
        _ = try RawConnection.handshake(path)
        #expect(await restarted.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: path), "a clean stop removes the socket file it created")
    }

    @Test func addressComesFromTheEnvironmentWhenNotGiven() async throws {
        let broker = try await BrokerProcess(addressFromEnvironment: true)
        let (_, welcome) = try RawConnection.handshake(broker.address)
        #expect(welcome.brokerPID == UInt32(broker.pid))
        #expect(broker.log.contains(broker.address))
    }
}
