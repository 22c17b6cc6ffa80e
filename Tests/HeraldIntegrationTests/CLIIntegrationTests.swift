import Foundation
import Herald
import Testing

/// The `herald` tool against a real heraldd.
@Suite("herald CLI", .timeLimit(.minutes(2)))
struct CLIIntegrationTests {
    /// Starts `herald sub` on `filters` plus a probe topic and returns once it provably
    /// receives: probes are published until one is printed (the same barrier the peer
    /// benchmarks use), so no sleep decides when the subscription is live.
    static func startSubscriber(_ broker: BrokerProcess, _ filters: [String], extra: [String] = []) async throws -> CLIProcess {
        try await startSubscriber(address: broker.address, filters, extra: extra)
    }

    /// Starts `herald sub` and returns once it demonstrably receives (a probe message got through).
    static func startSubscriber(address: String, _ filters: [String], extra: [String] = []) async throws -> CLIProcess {
        let probeTopic = "probe/\(UUID().uuidString.prefix(8))"
        let subscriber = try CLIProcess(["sub", "--address", address] + extra + filters + [probeTopic])
        let bus = try await Bus.connect(to: address)
        defer { Task { await bus.close() } }
        for _ in 0..<500 {
            try await bus.publish(probeTopic, "probe")
            try await bus.flush()
            if await subscriber.waitForLine(timeout: 0.02, where: { $0.contains(probeTopic) }) != nil { return subscriber }
        }
        throw CLITestError.subscriberNeverReady(subscriber.standardError)
    }

    enum CLITestError: Error { case subscriberNeverReady(String) }

    @Test func pubAndSubEndToEnd() async throws {
        let broker = try await BrokerProcess()
        let subscriber = try await Self.startSubscriber(broker, ["power/#"])

        let (status, _, errors) = try await CLIProcess.run(["pub", "--address", broker.address, "power/battery", "87"])
        #expect(status == 0, "\(errors)")
        let (stdinStatus, _, _) = try await CLIProcess.run(["pub", "--address", broker.address, "power/state"], input: "charging\ndischarging\n")
        #expect(stdinStatus == 0)

        let battery = await subscriber.waitForLine { $0.hasPrefix("power/battery ") }
        #expect(battery?.hasPrefix("power/battery 87") == true)
        #expect(battery?.contains("uid \(getuid())") == true, "the sender is printed: \(battery ?? "")")
        #expect(await subscriber.waitForLine { $0.hasPrefix("power/state discharging") } != nil)
        let states = subscriber.lines.filter { $0.hasPrefix("power/state") }
        #expect(states.count == 2 && states[0].hasPrefix("power/state charging"), "stdin lines arrive in order")

        kill(subscriber.process.processIdentifier, SIGINT)
        #expect(await subscriber.waitForExit() == 0, "SIGINT exits cleanly")
    }

    @Test func jsonOutputAndCount() async throws {
        let broker = try await BrokerProcess()
        // No probe messages here (they would count): the subscriber is ready once the broker
        // lists its subscription.
        let subscriber = try CLIProcess(["sub", "--address", broker.address, "sensors/+/temp", "--json", "--count", "2"])
        let bus = try await Bus.connect(to: broker.address)
        let subscribed = try await bus.waitForPeer { $0.subscriptions.map(\.filter) == ["sensors/+/temp"] }
        #expect(subscribed, "\(subscriber.standardError)")
        try await bus.publish("sensors/kitchen/temp", "21.5")
        try await bus.publish("sensors/kitchen/humidity", "40")  // does not match
        try await bus.publish("sensors/attic/temp", [0xFF, 0x00])  // not UTF-8
        try await bus.flush()
        #expect(await subscriber.waitForExit() == 0, "exits after --count messages")
        let objects = subscriber.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(objects.count == 2)
        let kitchen = objects.first { $0["topic"] as? String == "sensors/kitchen/temp" }
        #expect(kitchen?["payload"] as? String == "21.5")
        let sender = kitchen?["sender"] as? [String: Any]
        #expect((sender?["peer"] as? NSNumber)?.uint64Value == bus.peerID)
        #expect((sender?["pid"] as? NSNumber)?.int32Value == getpid())
        let attic = objects.first { $0["topic"] as? String == "sensors/attic/temp" }
        #expect(attic?["payload"] is NSNull)
        #expect(attic?["payload_base64"] as? String == "/wA=")
        await bus.close()
    }

    @Test func subscriberExitsWhenTheBrokerStops() async throws {
        let broker = try await BrokerProcess()
        let subscriber = try await Self.startSubscriber(broker, ["anything/#"], extra: ["--no-reconnect"])
        #expect(await broker.stop() == 0)
        let status = await subscriber.waitForExit()
        #expect(status == 3, "documented status for a lost broker; stderr: \(subscriber.standardError)")
        #expect(!subscriber.standardError.isEmpty)
    }

    @Test func clearErrorsForBadTopicsAndMissingBrokers() async throws {
        let broker = try await BrokerProcess()
        let (status, _, errors) = try await CLIProcess.run(["pub", "--address", broker.address, "power//battery", "1"])
        #expect(status == 1)
        #expect(errors.contains("invalid topic"), "\(errors)")
        let (reserved, _, reservedErrors) = try await CLIProcess.run(["pub", "--address", broker.address, "$SYS/x", "1"])
        #expect(reserved == 1)
        #expect(reservedErrors.contains("$"), "\(reservedErrors)")
        let (filterStatus, _, filterErrors) = try await CLIProcess.run(["sub", "--address", broker.address, "a/#/b"])
        #expect(filterStatus == 1)
        #expect(filterErrors.contains("invalid filter"), "\(filterErrors)")
        let (missing, _, missingErrors) = try await CLIProcess.run(["pub", "--address", TestEnvironment.uniqueAddress("nobody-home"), "a", "1"])
        #expect(missing == 2)
        #expect(missingErrors.contains("cannot reach"), "\(missingErrors)")
    }

    @Test func pingReportsTheBroker() async throws {
        let broker = try await BrokerProcess()
        let (status, output, _) = try await CLIProcess.run(["ping", "--address", broker.address])
        #expect(status == 0)
        #expect(output.contains("\(broker.pid)"), "ping shows the broker's pid: \(output)")
    }

    /// CI runs as root; a client run as `nobody` must be refused with its uid named.
    @Test(.enabled(if: getuid() == 0, "needs root to run a client as another user"))
    func anotherUserIsRefused() async throws {
        let broker = try await BrokerProcess()
        // A copy of the tool where `nobody` can reach it (build directories may be private).
        let directory = URL(fileURLWithPath: "/tmp/herald-cli-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("herald").path
        try FileManager.default.copyItem(atPath: TestEnvironment.heraldPath, toPath: copy)
        let cli = try CLIProcess(["pub", "--address", broker.address, "a/b", "hello"], executable: copy,
            prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        cli.write("", close: true)
        #expect(await cli.waitForExit() == 2)
        #expect(cli.standardError.contains("not authorized"), "\(cli.standardError)")
        #expect(cli.standardError.contains("65534"))
        #expect(broker.log.contains("refused connection"))
        #expect(broker.log.contains("uid=65534"))
    }
}

/// `herald peers` and `herald stats` against a real heraldd.
@Suite("herald peers and stats", .timeLimit(.minutes(1)))
struct IntrospectionCLITests {
    @Test func peersAndStatsShowWhoIsConnectedAndWhatTheyUse() async throws {
        let broker = try await BrokerProcess()
        let service = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "battery-service"))
        defer { Task { await service.close() } }
        let power = try await service.subscribe("power/#")  // kept: releasing it unsubscribes
        try await service.publish("power/battery", "87", retain: true)
        try await service.flush()

        let (status, output, errors) = try await CLIProcess.run(["peers", "--address", broker.address])
        #expect(status == 0, "\(errors)")
        let lines = output.split(separator: "\n")
        #expect(lines.first?.hasPrefix("PEER") == true, "\(output)")
        let row = try #require(lines.first { $0.contains("battery-service") }, "\(output)")
        #expect(row.contains("\(getpid())") && row.contains("active"), "\(row)")

        let peers = try await service.peers()
        #expect(peers.contains { $0.peer == service.peerID && $0.subscriptions.map(\.filter) == ["power/#"] && $0.published == 1 })

        let (statsStatus, stats, statsErrors) = try await CLIProcess.run(["stats", "--address", broker.address])
        #expect(statsStatus == 0, "\(statsErrors)")
        #expect(stats.contains("messages published") && stats.contains("retained messages held"), "\(stats)")
        #expect(stats.contains("quota"), "\(stats)")
        let (jsonStatus, json, _) = try await CLIProcess.run(["stats", "--address", broker.address, "--json"])
        #expect(jsonStatus == 0)
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect((object?["retained"] as? [String: Any])?["messages"] as? Int == 1)
        let report = try await service.brokerStatistics()
        #expect(report.counters["messages_published"] == 1 && report.uids.contains { $0.uid == getuid() && $0.retainedMessages == 1 })
        _ = power
    }
}

/// `herald monitor` against a real heraldd: every kind of traffic, one line each.
@Suite("herald monitor", .timeLimit(.minutes(1)))
struct MonitorCLITests {
    @Test func monitorShowsMessagesRequestsRepliesAndDirectMessages() async throws {
        let broker = try await BrokerProcess()
        // The test runs as the broker's user (or root): allowed to monitor.
        let monitor = try CLIProcess(["monitor", "--address", broker.address, "app/#", "--count", "4", "--json"])
        let responder = try await Bus.connect(
            to: broker.address, options: BusOptions(clientName: "responder", acceptsDirectMessages: true))
        defer { Task { await responder.close() } }
        let requests = try await responder.requests(on: "app/settings")
        let answering = Task { for try await request in requests { try await request.respond("dark") } }
        defer { answering.cancel() }
        let client = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "client"))
        defer { Task { await client.close() } }
        // The monitor is ready once the broker lists its monitor subscription (a probe message
        // would count towards --count, and how many probes arrive depends on timing).
        let ready = try await client.waitForPeer { $0.name == "herald monitor" && $0.subscriptions.map(\.filter) == ["app/#"] }
        #expect(ready, "\(monitor.standardError)")
        try await client.publish("app/ping", "ping")
        let answer = try await client.request("app/settings", "theme")
        #expect(answer.string == "dark")
        try await client.send(to: responder.peerID, "app/note", "hi")
        try await client.flush()
        #expect(await monitor.waitForExit() == 0, "\(monitor.standardError)")
        let kinds = monitor.lines.compactMap { line -> String? in
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            return object?["kind"] as? String
        }
        #expect(kinds == ["message", "request", "reply", "direct"], "\(monitor.standardOutput)")
        let reply = monitor.lines.first { $0.contains("\"kind\":\"reply\"") } ?? ""
        #expect(reply.contains("\"target\":\(client.peerID)") && reply.contains("\"payload\":\"dark\""), "\(reply)")
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run the monitor as another user"))
    func othersMayNotMonitor() async throws {
        let broker = try await BrokerProcess(["--allow-uid", "65534"])
        let monitor = try CLIProcess(
            ["monitor", "--address", broker.address, "--trust-uid", "0"],
            prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        #expect(await monitor.waitForExit() == 1, "\(monitor.standardError)")
        #expect(monitor.standardError.contains("root"), "\(monitor.standardError)")
    }
}
