import HeraldProtocol
import Testing

@testable import HeraldCore

/// Filter relations the SUBSCRIBE check relies on.
@Suite("Policy: filter relations")
struct FilterRelationTests {
    func filter(_ text: String) -> TopicFilter { try! TopicFilter(text) }

    @Test("overlaps: some topic matches both")
    func overlaps() {
        let cases: [(String, String, Bool)] = [
            ("#", "a/b", true), ("a/#", "a", true), ("a/+", "a/b", true), ("a/+", "a/b/c", false),
            ("a/b", "a/c", false), ("+/b", "a/+", true), ("a/#", "b/#", false), ("a/b/#", "a/+/c", true),
            ("#", "$SYS/x", false), ("$SYS/#", "$SYS/x", true), ("+/x", "$SYS/x", false), ("a", "a/b", false),
        ]
        for (left, right, expected) in cases {
            #expect(filter(left).overlaps(filter(right)) == expected, "\(left) ∩ \(right)")
            #expect(filter(right).overlaps(filter(left)) == expected, "\(right) ∩ \(left)")
        }
    }

    @Test("covers: every topic of the second matches the first")
    func covers() {
        let cases: [(String, String, Bool)] = [
            ("#", "a/b", true), ("#", "#", true), ("a/#", "a", true), ("a/#", "a/+/c", true), ("a/+", "a/b", true),
            ("a/+", "a/#", false), ("a/b", "a/+", false), ("a/b", "a/b", true), ("a/#", "#", false),
            ("+/b", "a/b", true), ("#", "$SYS/x", false), ("$SYS/#", "$SYS/x", true), ("a/+/c", "a/b/#", false),
        ]
        for (wide, narrow, expected) in cases {
            #expect(filter(wide).covers(filter(narrow)) == expected, "\(wide) ⊇ \(narrow)")
        }
    }
}

/// The rule trie must find the same first rule as testing each rule in order.
@Suite("Policy: rule index")
struct RuleIndexTests {
    @Test func agreesWithFirstMatchInOrderOnRandomRulesAndTopics() {
        var random = RandomTopics()
        for _ in 0..<200 {
            let filters = (0..<Int.random(in: 0...30)).map { _ in try! TopicFilter(random.filter()) }
            let index = RuleIndex(filters)
            for _ in 0..<50 {
                let topic = random.topic()
                let expected = filters.firstIndex { $0.matches(topic) }
                var bytes = topic
                let found = bytes.withUTF8 { index.firstMatch(UnsafeRawBufferPointer($0)) }
                #expect(found == expected, "\(topic) against \(filters.map(\.text))")
            }
        }
    }
}

/// The policy in the core: admission by user and group, first-match PUBLISH and SUBSCRIBE
/// rules, deliveries limited to what a subscriber may receive, denials naming the rule,
/// and reloading.
@Suite("Policy enforcement")
struct PolicyTests {
    static let file = "policy.toml"

    static func location(_ line: Int) -> PolicyLocation { PolicyLocation(file: file, line: line) }

    static func rule(
        _ filter: String, users: Set<UInt32> = [], groups: Set<UInt32> = [], publish: PolicyVerdict? = nil,
        subscribe: PolicyVerdict? = nil, line: Int
    ) -> PolicyRule {
        PolicyRule(filter: try! TopicFilter(filter), subjects: PolicySubjects(users: users, groups: groups),
            publish: publish, subscribe: subscribe, location: location(line))
    }

    /// uid 1000 is the broker's; 2000 and 3000 are admitted by the policy; group 500 are operators.
    static let policy = Policy(
        admittedUsers: [2000, 3000], admittedGroups: [600],
        rules: [
            rule("power/#", users: [2000], publish: .allow, line: 10),
            rule("power/#", publish: .deny, subscribe: .allow, line: 14),
            rule("secrets/#", groups: [500], subscribe: .allow, line: 18),
            rule("secrets/#", subscribe: .deny, line: 22),
        ],
        defaultPublish: .allow, defaultSubscribe: .allow, defaultLocation: location(2))

    func harness(_ policy: Policy = PolicyTests.policy) -> CoreHarness {
        CoreHarness { $0.policy = policy }
    }

    func error(_ frames: [Frame]) -> ErrorFrame? { CoreHarness.firstError(frames) }

    @Test("admission: listed users and members of listed groups (primary or supplementary) are admitted")
    func admission() {
        let harness = harness()
        #expect(harness.connect(uid: 2000).state == .active)
        #expect(harness.connect(uid: 4000, groups: [600]).state == .active, "supplementary group 600")
        let stranger = harness.connect(uid: 4000, groups: [601], hello: false)
        #expect(stranger.state == .closing)
        #expect(error(harness.drain(stranger))?.knownCode == .notAuthorized)
        #expect(harness.connect(uid: 0).state == .active, "root is always admitted")
    }

    @Test("publish: the first rule that applies decides; the denial names it and the session goes on")
    func publishFirstMatch() {
        let harness = harness()
        let upower = harness.connect(uid: 2000)
        let other = harness.connect(uid: 3000)
        let reader = harness.connect(uid: 3000)
        harness.subscribe(reader, "power/#", id: 1)

        harness.publish(upower, "power/battery", [1])
        #expect(harness.drain(upower).isEmpty)
        harness.publish(other, "power/battery", [2])
        let denial = error(harness.drain(other))
        #expect(denial?.knownCode == .forbidden && denial?.isFatal == false && denial?.requestID == 1)
        #expect(denial?.message.contains("policy.toml:14") == true, "\(String(describing: denial))")
        #expect(denial?.message.contains("power/battery") == true)
        #expect(other.state == .active)
        // Allowed by the default where no rule applies.
        harness.publish(other, "weather/today", [3])
        #expect(harness.drain(other).isEmpty)
        #expect(CoreHarness.payloads(harness.drain(reader)) == [[1]], "the denied message reached nobody")
        #expect(harness.core.statistics.policyDenials == 1)
    }

    @Test("a '#' subscriber is accepted and receives only the topics it may receive")
    func wideSubscriberIsFiltered() {
        let harness = harness()
        let publisher = harness.connect(uid: 1000)
        let everything = harness.connect(uid: 3000)
        let operatorPeer = harness.connect(uid: 3000, groups: [500])
        harness.subscribe(everything, "#", id: 1)
        harness.subscribe(operatorPeer, "#", id: 1)
        for (topic, byte) in [("secrets/key", 1), ("weather/today", 2), ("secrets/other", 3)] as [(String, UInt8)] {
            harness.publish(publisher, topic, [byte])
            harness.publish(publisher, topic, [byte])  // The second goes through the cached route.
        }
        #expect(CoreHarness.payloads(harness.drain(everything)) == [[2], [2]])
        #expect(CoreHarness.payloads(harness.drain(operatorPeer)) == [[1], [1], [2], [2], [3], [3]])
    }

    @Test("a narrow subscription to denied topics is refused with the rule; an allowed one is not")
    func narrowSubscriberIsRefused() {
        let harness = harness()
        let peer = harness.connect(uid: 3000)
        harness.send(peer, .subscribe(Subscribe(requestID: 7, subscriptionID: 1, filter: "secrets/key")))
        let refusal = error(harness.drain(peer))
        #expect(refusal?.knownCode == .forbidden && refusal?.requestID == 7 && refusal?.isFatal == false)
        #expect(refusal?.message.contains("policy.toml:22") == true)
        harness.send(peer, .subscribe(Subscribe(requestID: 8, subscriptionID: 2, filter: "secrets/#")))
        #expect(error(harness.drain(peer))?.knownCode == .forbidden)
        harness.subscribe(peer, "power/+", id: 3)
        let operatorPeer = harness.connect(uid: 3000, groups: [500])
        harness.subscribe(operatorPeer, "secrets/key", id: 1)
    }

    @Test("a default of deny: only what a rule allows, and the denial names the defaults' line")
    func denyByDefault() {
        var policy = Policy(rules: [Self.rule("public/#", publish: .allow, subscribe: .allow, line: 5)],
            defaultPublish: .deny, defaultSubscribe: .deny, defaultLocation: Self.location(2))
        policy.admittedUsers = [2000]
        let harness = harness(policy)
        let peer = harness.connect(uid: 2000)
        harness.subscribe(peer, "public/news", id: 1)
        // '#' may receive public/..., so it is accepted and filtered.
        harness.subscribe(peer, "#", id: 2)
        harness.send(peer, .subscribe(Subscribe(requestID: 3, subscriptionID: 3, filter: "private/+")))
        #expect(error(harness.drain(peer))?.message.contains("policy.toml:2") == true)
        harness.publish(peer, "private/x")
        #expect(error(harness.drain(peer))?.knownCode == .forbidden)
        harness.publish(peer, "public/news", [9])
        #expect(CoreHarness.payloads(harness.drain(peer)) == [[9]])
    }

    @Test("reload: revoked subscriptions are told by id, dropped users are closed, cached routes are rebuilt")
    func reload() {
        let harness = harness()
        let publisher = harness.connect(uid: 1000)
        let reader = harness.connect(uid: 3000)
        let leaving = harness.connect(uid: 2000)
        harness.subscribe(reader, "weather/#", id: 4)
        harness.subscribe(reader, "news/#", id: 5)
        harness.publish(publisher, "weather/today", [1])
        #expect(CoreHarness.payloads(harness.drain(reader)) == [[1]])

        var stricter = Self.policy
        stricter.admittedUsers = [3000]
        stricter.rules.insert(Self.rule("weather/#", users: [3000], subscribe: .deny, line: 3), at: 0)
        var configuration = harness.core.configuration
        configuration.policy = stricter
        let summary = harness.core.reload(configuration, now: harness.clock)
        #expect(summary == { var s = PolicyReloadSummary(); s.connectionsClosed = 1; s.subscriptionsRevoked = 1; return s }())

        let notice = error(harness.drain(reader))
        #expect(notice?.knownCode == .subscriptionRevoked && notice?.requestID == 4 && notice?.isFatal == false)
        #expect(notice?.message.contains("policy.toml:3") == true)
        #expect(reader.state == .active && reader.pointee.subscriptions.keys.sorted() == [5])
        #expect(leaving.state == .closing)
        #expect(error(harness.drain(leaving))?.knownCode == .notAuthorized)
        // The publisher's cached route for weather/today still named the reader.
        harness.publish(publisher, "weather/today", [2])
        harness.publish(publisher, "news/today", [3])
        #expect(CoreHarness.payloads(harness.drain(reader)) == [[3]])
        #expect(harness.core.usage(of: 3000).subscriptions == 1, "the revoked subscription is no longer charged")
    }

    @Test("no client field changes what the policy sees: identity comes from the kernel at accept")
    func identityIsNotClientProvided() {
        let harness = harness()
        let peer = harness.connect(uid: 3000, name: "uid=2000 root")
        harness.publish(peer, "power/battery")
        #expect(error(harness.drain(peer))?.knownCode == .forbidden)
    }
}
