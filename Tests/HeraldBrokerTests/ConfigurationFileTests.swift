import Foundation
import HeraldConfigurationFile
import HeraldCore
import HeraldProtocol
import Testing

/// Names for tests, independent of the machine's user database.
struct TableNames: NameResolver {
    var users = ["root": UInt32(0), "alice": 1001, "upower": 1002]
    var groups = ["herald": UInt32(900), "power": 901]

    func userID(named name: String) -> UInt32? { users[name] }
    func groupID(named name: String) -> UInt32? { groups[name] }
    func userName(of uid: UInt32) -> String? { users.first { $0.value == uid }?.key }
    func groupName(of gid: UInt32) -> String? { groups.first { $0.value == gid }?.key }
}

@Suite("Configuration file")
struct ConfigurationFileTests {
    let names = TableNames()

    func parse(_ text: String) throws(ConfigurationFileError) -> ConfigurationFile {
        try ConfigurationFile.parse(text, path: "test.toml", names: names)
    }

    func problems(_ text: String) -> [ConfigurationFileError.Problem] {
        do {
            _ = try parse(text)
            Issue.record("expected the file to be rejected")
            return []
        } catch {
            return error.problems
        }
    }

    @Test("a complete file: names resolved, rules in order with their lines, limits applied")
    func completeFile() throws {
        let file = try parse(
            """
            [connect]
            users = ["alice", 1500]
            groups = ["herald"]

            [default]
            publish = "deny"

            [limits]
            output-limit = "1M"
            max-connections-per-uid = 10
            frame-timeout = 2.5
            slow-consumer = "disconnect"
            shutdown-grace = 1

            [[rule]]
            topics = "power/#"
            users = ["upower"]
            groups = ["power"]
            publish = "allow"

            [[rule]]
            # everyone may read power state
            topics = "power/#"
            subscribe = "allow"
            """)
        #expect(file.policy.admittedUsers == [1001, 1500] && file.policy.admittedGroups == [900])
        #expect(file.policy.defaultPublish == .deny && file.policy.defaultSubscribe == .allow)
        #expect(file.policy.defaultLocation == PolicyLocation(file: "test.toml", line: 5))
        #expect(file.policy.rules.count == 2)
        let first = file.policy.rules[0]
        #expect(first.filter.text == "power/#" && first.subjects == PolicySubjects(users: [1002], groups: [901]))
        #expect(first.publish == .allow && first.subscribe == nil && first.location.line == 15)
        #expect(file.policy.rules[1].subjects.isEveryone && file.policy.rules[1].location.line == 21)

        var configuration = BrokerConfiguration()
        file.apply(to: &configuration)
        #expect(configuration.outputLimit == 1 << 20 && configuration.maxConnectionsPerUID == 10)
        #expect(configuration.frameTimeout == 2.5 && configuration.defaultSlowConsumerPolicy == .disconnect)
        #expect(configuration.shutdownGrace == 1)
        #expect(configuration.policy == file.policy)
        #expect(file.summary(names: names).contains("line 15: user upower (1002), members of group power (901) may publish to 'power/#'"))
    }

    @Test("every problem is reported with its line, and nothing is half-applied")
    func problemsHaveLines() {
        let found = problems(
            """
            [connect]
            users = ["mallory"]
            [limits]
            output-limit = "tiny"
            max-connections = 0
            bogus = 1
            [[rule]]
            topics = "a/#/b"
            publish = "maybe"
            [[rule]]
            topics = "b"
            [[rule]]
            topics = "$SYS/x"
            publish = "allow"
            colour = "red"
            [extra]
            """)
        let lines = found.map(\.line)
        #expect(lines == [2, 4, 5, 6, 8, 9, 10, 14, 15, 16], "\(found)")
        #expect(found[0].message.contains("no user named 'mallory'"))
        #expect(found[4].message.contains("not a valid filter"))
        #expect(found[6].message.contains("says neither publish"))
        #expect(found[7].message.contains("only the broker publishes to '$' topics"))
    }

    @Test("TOML syntax errors name their line")
    func syntaxError() {
        #expect(problems("[connect]\nusers = [\"alice\",\n").first?.line ?? 0 >= 2)
    }

    @Test("rules written as an inline array are refused, since their lines cannot be named")
    func inlineRules() {
        #expect(problems("rule = [{ topics = \"a\", publish = \"allow\" }]").first?.message.contains("[[rule]]") == true)
    }

    @Test("the example file in examples/config is valid on this system")
    func exampleFileIsValid() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/config/heraldd.toml").path
        let file = try ConfigurationFile.load(path: path)
        #expect(file.policy.rules.count == 5)
    }
}
