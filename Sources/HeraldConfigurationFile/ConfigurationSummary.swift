import HeraldCore
import HeraldProtocol

/// What a configuration file allows, in plain words: `heraldd --check-config FILE`.
extension ConfigurationFile {
    /// A description of the policy and limits, naming users and groups as the system does.
    public func summary(names: NameResolver = SystemNameResolver()) -> String {
        var lines: [String] = ["\(path): valid", ""]
        var admitted = ["the broker's own user", "root", "users given with --allow-uid"]
        admitted += policy.admittedUsers.sorted().map { "user \(user($0, names))" }
        admitted += policy.admittedGroups.sorted().map { "members of group \(group($0, names))" }
        lines.append("Who may connect: " + admitted.joined(separator: ", ") + ".")
        lines.append("")
        if policy.rules.isEmpty {
            lines.append("No rules: whoever connects may publish \(plain(policy.defaultPublish)) and subscribe \(plain(policy.defaultSubscribe)).")
        } else {
            lines.append("Publishing and subscribing (rules in order; the first that applies decides):")
            for rule in policy.rules {
                var actions: [String] = []
                if let publish = rule.publish { actions.append("\(publish == .allow ? "may" : "may not") publish to") }
                if let subscribe = rule.subscribe { actions.append("\(subscribe == .allow ? "may" : "may not") subscribe to") }
                let who = subjects(rule.subjects, names)
                lines.append("  line \(rule.location.line): \(who) \(actions.joined(separator: " and ")) '\(rule.filter)'")
            }
            lines.append("  otherwise: publishing is \(policy.defaultPublish == .allow ? "allowed" : "denied"), "
                + "subscribing is \(policy.defaultSubscribe == .allow ? "allowed" : "denied")")
            lines.append("A subscription is accepted if it may receive some of its topics, and receives only those.")
        }
        lines.append("Topics starting with '$' are published by the broker only.")
        lines.append("")
        if limits.isEmpty {
            lines.append("Limits: the defaults (flags may change them).")
        } else {
            lines.append("Limits set here (a flag on the command line overrides them):")
            for limit in limits { lines.append("  \(limit.setting.rawValue) = \(limit.value)") }
        }
        return lines.joined(separator: "\n")
    }

    private func plain(_ verdict: PolicyVerdict) -> String {
        verdict == .allow ? "to everything" : "to nothing"
    }

    private func subjects(_ subjects: PolicySubjects, _ names: NameResolver) -> String {
        if subjects.isEveryone { return "everyone" }
        let parts = subjects.users.sorted().map { "user \(user($0, names))" }
            + subjects.groups.sorted().map { "members of group \(group($0, names))" }
        return parts.joined(separator: ", ")
    }

    private func user(_ uid: UInt32, _ names: NameResolver) -> String {
        names.userName(of: uid).map { "\($0) (\(uid))" } ?? "\(uid)"
    }

    private func group(_ gid: UInt32, _ names: NameResolver) -> String {
        names.groupName(of: gid).map { "\($0) (\(gid))" } ?? "\(gid)"
    }
}
