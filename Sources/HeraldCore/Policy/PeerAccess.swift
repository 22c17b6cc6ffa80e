import HeraldProtocol

/// The policy as it applies to one identity, computed once per distinct identity (at
/// admission and at each reload) so that checking a PUBLISH or a delivery never looks at
/// rules about other users. The core consults it only when a publisher's route is
/// rebuilt, never per message: the verdict is cached with the route (see `Router`).
final class PeerAccess {
    /// A rule that applies to this identity, reduced to what one action needs.
    struct Rule {
        let filter: TopicFilter
        let verdict: PolicyVerdict
        let location: PolicyLocation
    }

    let publishRules: [Rule]
    let subscribeRules: [Rule]
    /// The rules' filters as tries: a topic finds its first matching rule in one walk.
    private let publishIndex: RuleIndex
    private let subscribeIndex: RuleIndex
    let defaultPublish: PolicyVerdict
    let defaultSubscribe: PolicyVerdict
    let defaultLocation: PolicyLocation
    /// No rule or default can refuse this identity a PUBLISH: the check is skipped.
    let publishesAnywhere: Bool
    /// No rule or default can withhold a delivery from this identity: the check is skipped.
    let receivesEverything: Bool

    init(policy: Policy, identity: PeerIdentity) {
        let applicable = policy.rules.filter { $0.subjects.include(identity) }
        publishRules = applicable.compactMap { rule in
            rule.publish.map { Rule(filter: rule.filter, verdict: $0, location: rule.location) }
        }
        subscribeRules = applicable.compactMap { rule in
            rule.subscribe.map { Rule(filter: rule.filter, verdict: $0, location: rule.location) }
        }
        publishIndex = RuleIndex(publishRules.map(\.filter))
        subscribeIndex = RuleIndex(subscribeRules.map(\.filter))
        defaultPublish = policy.defaultPublish
        defaultSubscribe = policy.defaultSubscribe
        defaultLocation = policy.defaultLocation
        publishesAnywhere = defaultPublish == .allow && publishRules.allSatisfy { $0.verdict == .allow }
        receivesEverything = defaultSubscribe == .allow && subscribeRules.allSatisfy { $0.verdict == .allow }
    }

    /// The rule (or default) that forbids publishing to `topic`, or nil if it is allowed.
    func publishDenial(_ topic: UnsafeRawBufferPointer) -> PolicyLocation? {
        if publishesAnywhere { return nil }
        return Self.decide(publishIndex.firstMatch(topic).map { publishRules[$0] }, defaultPublish, defaultLocation)
    }

    /// Whether a message on `topic` may be delivered to this identity.
    func mayReceive(_ topic: UnsafeRawBufferPointer) -> Bool {
        receiveDenial(topic) == nil
    }

    /// The rule (or default) that keeps a message on `topic` from this identity, or nil.
    func receiveDenial(_ topic: UnsafeRawBufferPointer) -> PolicyLocation? {
        if receivesEverything { return nil }
        return Self.decide(subscribeIndex.firstMatch(topic).map { subscribeRules[$0] }, defaultSubscribe, defaultLocation)
    }

    /// The rule (or default) that refuses a subscription to `filter`, or nil to accept it.
    ///
    /// A subscription is accepted when some topic it matches may be received; the peer then
    /// receives only those topics (`mayReceive`). It is refused when the first rule that
    /// says something about all of its topics (a rule whose filter covers it) denies, and no
    /// earlier rule allowed part of it; rules that deny only part of it are left to delivery.
    func subscribeDenial(_ filter: TopicFilter) -> PolicyLocation? {
        if receivesEverything { return nil }
        for rule in subscribeRules where rule.filter.overlaps(filter) {
            if rule.verdict == .allow { return nil }
            if rule.filter.covers(filter) { return rule.location }
        }
        return defaultSubscribe == .allow ? nil : defaultLocation
    }

    /// The denying location for the first matching rule, or for the default when none matched.
    private static func decide(_ rule: Rule?, _ defaultVerdict: PolicyVerdict, _ defaultLocation: PolicyLocation) -> PolicyLocation? {
        if let rule { return rule.verdict == .allow ? nil : rule.location }
        return defaultVerdict == .allow ? nil : defaultLocation
    }
}
