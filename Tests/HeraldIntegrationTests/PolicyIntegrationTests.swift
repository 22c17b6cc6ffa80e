import Foundation
import Herald
import HeraldProtocol
import Testing

/// heraldd with a configuration file: denials through the real library and CLI, SIGHUP
/// reloads, `--check-config`, flags over the file, and admission of another user.
@Suite("Policy file", .timeLimit(.minutes(2)))
struct PolicyIntegrationTests {
    /// A configuration file in a fresh temporary directory, removed by `remove()`.
    final class ConfigFile: @unchecked Sendable {
        let directory: URL
        let path: String

        init(_ text: String) throws {
            directory = URL(fileURLWithPath: "/tmp/herald-config-\(getpid())-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                attributes: [.posixPermissions: 0o755])
            path = directory.appendingPathComponent("heraldd.toml").path
            try write(text)
        }

        func write(_ text: String) throws {
            // Written aside and renamed, as an editor or a configuration tool would.
            let temporary = path + ".new"
            try text.write(toFile: temporary, atomically: false, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: temporary)
            _ = rename(temporary, path)
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    static let rules = """
        [[rule]]
        topics = "locked/#"
        publish = "deny"
        subscribe = "deny"

        [[rule]]
        topics = "hidden/#"
        subscribe = "deny"
        """

    @Test("a denied PUBLISH and SUBSCRIBE fail with `forbidden` naming file:line; '#' receives only what it may")
    func denialsThroughTheLibrary() async throws {
        let config = try ConfigFile(Self.rules)
        let broker = try await BrokerProcess(["--config", config.path])
        let bus = try await Bus.connect(to: broker.address)
        defer { Task { await bus.close() } }

        try await bus.publish("locked/door", "open")
        await #expect {
            try await bus.flush()
        } throws: { error in
            guard case .forbidden(let message) = error as? HeraldError else { return false }
            return message.hasSuffix("\(config.path):1") && message.contains("locked/door")
        }
        await #expect {
            _ = try await bus.subscribe("locked/+")
        } throws: { error in
            guard case .forbidden(let message) = error as? HeraldError else { return false }
            return message.hasSuffix("\(config.path):1")
        }

        let everything = try await bus.subscribe("#")
        try await bus.publish("hidden/note", "not for you")
        try await bus.publish("open/note", "hello")
        try await bus.flush()
        var iterator = everything.makeAsyncIterator()
        let first = try await iterator.next()
        #expect(first?.topic == "open/note", "the hidden topic was withheld, the open one delivered")
        #expect(broker.log.contains("request denied by policy"))
        #expect(broker.log.contains("rule=\(config.path):1"))
        #expect(broker.log.contains("uid=\(getuid())") && broker.log.contains("pid=\(getpid())"))
    }

    @Test("`herald pub` to a denied topic exits 1 and says which rule denied it")
    func denialThroughTheCLI() async throws {
        let config = try ConfigFile(Self.rules)
        let broker = try await BrokerProcess(["--config", config.path])
        let (status, _, errors) = try await CLIProcess.run(["pub", "--address", broker.address, "locked/door", "open"])
        #expect(status == 1)
        #expect(errors.contains("forbidden") && errors.contains("\(config.path):1"), "\(errors)")
    }

    @Test("SIGHUP applies a new file: revoked subscriptions end with the rule; a bad file keeps the old policy")
    func reload() async throws {
        let config = try ConfigFile(Self.rules)
        let broker = try await BrokerProcess(["--config", config.path])
        let bus = try await Bus.connect(to: broker.address)
        defer { Task { await bus.close() } }
        let news = try await bus.subscribe("news/#")
        let weather = try await bus.subscribe("weather/#")

        // A file with a syntax error: rejected with its line, nothing changes.
        try config.write("[[rule]]\ntopics = \"news/#\"\nsubscribe = \n")
        #expect(await broker.reload())
        #expect(broker.log.contains("keeping the one in force"))
        #expect(broker.log.contains("\(config.path):3"), "\(broker.log)")
        try await bus.publish("news/today", "still here")
        try await bus.flush()
        var newsMessages = news.makeAsyncIterator()
        #expect(try await newsMessages.next()?.string == "still here")

        // A valid file that denies news/#: the subscription ends, naming the new rule.
        try config.write(Self.rules + "\n\n[[rule]]\ntopics = \"news/#\"\nsubscribe = \"deny\"\n")
        #expect(await broker.reload())
        await #expect {
            while try await newsMessages.next() != nil {}
        } throws: { error in
            guard case .subscriptionRevoked(let filter, let message) = error as? HeraldError else { return false }
            return filter == "news/#" && message.hasSuffix("\(config.path):10")
        }
        // The rest of the connection goes on.
        try await bus.publish("weather/today", "sunny")
        try await bus.flush()
        var weatherMessages = weather.makeAsyncIterator()
        #expect(try await weatherMessages.next()?.string == "sunny")
        #expect(broker.log.contains("subscription revoked by policy"))
        #expect(broker.log.contains("subscriptions_revoked=1"))
    }

    @Test("--check-config prints what a file allows, or its errors with file:line and exit status 1")
    func checkConfig() async throws {
        let good = try ConfigFile("[default]\npublish = \"deny\"\n\n" + Self.rules)
        let check = try CLIProcess(["--check-config", good.path], executable: TestEnvironment.heralddPath)
        check.write("", close: true)
        #expect(await check.waitForExit() == 0)
        #expect(check.standardOutput.contains("\(good.path): valid"), "\(check.standardOutput)")
        #expect(check.standardOutput.contains("line 4: everyone may not publish to and may not subscribe to 'locked/#'"))
        #expect(check.standardOutput.contains("otherwise: publishing is denied, subscribing is allowed"))

        let bad = try ConfigFile("[connect]\nusers = [\"no-such-user-here\"]\n[limits]\nmax-connections = -1\n")
        let failing = try CLIProcess(["--check-config", bad.path], executable: TestEnvironment.heralddPath)
        failing.write("", close: true)
        #expect(await failing.waitForExit() == 1)
        #expect(failing.standardError.contains("\(bad.path):2: no user named 'no-such-user-here'"), "\(failing.standardError)")
        #expect(failing.standardError.contains("\(bad.path):4: max-connections must be between"))

        // A broker given a bad file does not start, and says why.
        let refused = try CLIProcess(["--address", TestEnvironment.uniqueAddress("bad-config"), "--config", bad.path],
            executable: TestEnvironment.heralddPath)
        refused.write("", close: true)
        #expect(await refused.waitForExit() == 1)
        #expect(refused.standardError.contains("invalid configuration") && refused.standardError.contains("\(bad.path):2"))
    }

    @Test("a flag given on the command line overrides the same limit in the file")
    func flagsOverrideTheFile() async throws {
        let config = try ConfigFile("[limits]\noutput-limit = \"64K\"\nmax-topic-length = 100\n")
        let broker = try await BrokerProcess(["--config", config.path, "--output-limit", "1M"])
        let bus = try await Bus.connect(to: broker.address)
        #expect(bus.broker.outputLimit == 1 << 20, "the flag wins")
        #expect(bus.broker.maxTopicLength == 100, "the file applies where no flag is given")
        await bus.close()
    }

    /// CI runs as root: `nobody` is admitted by the file's [connect] and held to its rules.
    @Test(.enabled(if: getuid() == 0, "needs root to run a client as another user"))
    func anotherUserAdmittedByTheFile() async throws {
        let config = try ConfigFile("""
            [connect]
            users = ["nobody"]

            [[rule]]
            topics = "root-only/#"
            users = ["nobody"]
            publish = "deny"
            """)
        let broker = try await BrokerProcess(["--config", config.path])
        let directory = URL(fileURLWithPath: "/tmp/herald-cli-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("herald").path
        try FileManager.default.copyItem(atPath: TestEnvironment.heraldPath, toPath: copy)
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

        let allowed = try CLIProcess(["pub", "--address", broker.address, "--trust-uid", "0", "shared/x", "1"], executable: copy, prefix: asNobody)
        allowed.write("", close: true)
        #expect(await allowed.waitForExit() == 0, "\(allowed.standardError)")
        let denied = try CLIProcess(["pub", "--address", broker.address, "--trust-uid", "0", "root-only/x", "1"], executable: copy, prefix: asNobody)
        denied.write("", close: true)
        #expect(await denied.waitForExit() == 1)
        #expect(denied.standardError.contains("\(config.path):4"), "\(denied.standardError)")
        // Root is not named by the rule.
        let (status, _, _) = try await CLIProcess.run(["pub", "--address", broker.address, "root-only/x", "1"])
        #expect(status == 0)
    }

    /// A client run as nobody claims to be root through every field it sends (its name, a
    /// sender block in its payload, undefined flags): deliveries carry its kernel identity
    /// and the policy treats it as nobody.
    @Test(.enabled(if: getuid() == 0, "needs root to run the forger as another user"))
    func aClientCannotForgeItsIdentity() async throws {
        let config = try ConfigFile("""
            [connect]
            users = ["nobody"]

            [[rule]]
            topics = "forge/root-only"
            users = ["root"]
            publish = "allow"
            subscribe = "allow"

            [[rule]]
            topics = "forge/root-only"
            publish = "deny"

            [[rule]]
            topics = "forge/secret"
            users = ["root"]
            subscribe = "allow"

            [[rule]]
            topics = "forge/secret"
            subscribe = "deny"
            """)
        let broker = try await BrokerProcess(["--config", config.path])
        let bus = try await Bus.connect(to: broker.address)
        defer { Task { await bus.close() } }
        let forged = try await bus.subscribe("forge/#")

        let script = config.directory.appendingPathComponent("forger.py").path
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/forger.py")
        try FileManager.default.copyItem(atPath: source.path, toPath: script)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script)
        let forger = try CLIProcess([script, broker.address], executable: "/usr/bin/python3",
            prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
        defer { forger.write("", close: true) }
        let pidLine = try #require(await forger.waitForLine { $0.hasPrefix("pid ") })
        let forgerPID = UInt32(pidLine.dropFirst(4))
        let done = await forger.waitForLine { $0 == "done" }
        #expect(done != nil, "\(forger.standardError)")

        let errors = forger.lines.filter { $0.hasPrefix("error ") }
        #expect(errors.contains { $0.hasPrefix("error 18 2 ") }, "undefined flags: \(errors)")
        #expect(errors.contains { $0.hasPrefix("error 24 3 ") && $0.hasSuffix("\(config.path):10") }, "root's topic: \(errors)")
        #expect(errors.contains { $0.hasPrefix("error 24 7 ") && $0.hasSuffix("\(config.path):19") }, "root's subscription: \(errors)")

        try await bus.publish("forge/open", "marker")
        try await bus.flush()
        var received: [Message] = []
        for try await message in forged {
            received.append(message)
            if message.string == "marker" { break }
        }
        #expect(received.count == 2, "only the forger's first PUBLISH and the marker: \(received.map(\.topic))")
        let fromForger = try #require(received.first)
        #expect(fromForger.sender.uid == 65534 && fromForger.sender.gid == 65534 && fromForger.sender.pid == forgerPID)
        #expect(fromForger.payload.count == 24 + 9, "the forged sender block is just payload")
        #expect(broker.log.contains("uid=65534"))
    }
}
