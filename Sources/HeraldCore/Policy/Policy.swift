import HeraldProtocol

/// Who may connect and, per topic filter, who may publish and subscribe: the broker's
/// access policy, with every name already resolved to an id (heraldd's policy file is read
/// into one of these; PROTOCOL.md §5.7 and the README's Security section describe it).
///
/// Rules are tried in order and the **first** rule that applies decides (like a firewall):
/// a rule applies to a peer when the peer is one of its subjects, to an action when the
/// rule says something about that action, and to a topic when its filter matches it. When
/// no rule applies, ``defaultPublish`` or ``defaultSubscribe`` decides.
///
/// Without a policy file the policy is ``open``: nobody besides the broker's own user and
/// root (and `--allow-uid`) may connect, and whoever connects may publish and subscribe to
/// everything. Topics starting with `$` are the broker's whatever the policy says.
public struct Policy: Sendable, Equatable {
    /// Users admitted besides the broker's own uid and root.
    public var admittedUsers: Set<UInt32>
    /// Groups whose members (primary or supplementary) are admitted.
    public var admittedGroups: Set<UInt32>
    /// The rules, in file order.
    public var rules: [PolicyRule]
    /// What happens to a PUBLISH no rule applies to.
    public var defaultPublish: PolicyVerdict
    /// What happens to a subscription (and a delivery) no rule applies to.
    public var defaultSubscribe: PolicyVerdict
    /// Where the defaults were set, for denials by default.
    public var defaultLocation: PolicyLocation

    /// Creates a policy.
    public init(
        admittedUsers: Set<UInt32> = [], admittedGroups: Set<UInt32> = [], rules: [PolicyRule] = [],
        defaultPublish: PolicyVerdict = .allow, defaultSubscribe: PolicyVerdict = .allow,
        defaultLocation: PolicyLocation = PolicyLocation(file: "built-in policy", line: 0)
    ) {
        self.admittedUsers = admittedUsers
        self.admittedGroups = admittedGroups
        self.rules = rules
        self.defaultPublish = defaultPublish
        self.defaultSubscribe = defaultSubscribe
        self.defaultLocation = defaultLocation
    }

    /// The policy when no file is given: only the broker's user and root (plus
    /// ``BrokerConfiguration/extraAllowedUIDs``) connect, with full access.
    public static let open = Policy()

    /// Whether a peer with `identity` is admitted by this policy's lists. (The broker's own
    /// uid, root and `--allow-uid` are admitted by the broker regardless.)
    public func admits(_ identity: PeerIdentity) -> Bool {
        admittedUsers.contains(identity.uid) || identity.isMember(ofAny: admittedGroups)
    }
}

/// Allow or deny.
public enum PolicyVerdict: String, Sendable, Equatable {
    /// The action is permitted.
    case allow
    /// The action is refused with `forbidden`.
    case deny
}

/// A place in a policy file, named in every denial (`ERROR forbidden` and the log line).
public struct PolicyLocation: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// The file, as given to heraldd.
    public var file: String
    /// 1-based line (0 when the location is not a line: the built-in policy).
    public var line: Int

    /// Creates a location.
    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// Whom a rule is about: listed users and members of listed groups, or everyone when
/// both lists are empty.
public struct PolicySubjects: Sendable, Equatable {
    /// User ids the rule applies to.
    public var users: Set<UInt32>
    /// Group ids whose members (primary or supplementary group) the rule applies to.
    public var groups: Set<UInt32>

    /// Creates subjects; both empty means everyone.
    public init(users: Set<UInt32> = [], groups: Set<UInt32> = []) {
        self.users = users
        self.groups = groups
    }

    /// Every peer.
    public static let everyone = PolicySubjects()

    /// Whether the rule applies to everyone.
    public var isEveryone: Bool { users.isEmpty && groups.isEmpty }

    /// Whether a peer with `identity` is one of these subjects.
    public func include(_ identity: PeerIdentity) -> Bool {
        isEveryone || users.contains(identity.uid) || identity.isMember(ofAny: groups)
    }
}

/// One `[[rule]]` of a policy: for the topics `filter` matches, whether its subjects may
/// publish and whether they may subscribe (either may be left unsaid, and then the rule
/// does not apply to that action).
public struct PolicyRule: Sendable, Equatable {
    /// The topics the rule is about.
    public var filter: TopicFilter
    /// Whom it is about.
    public var subjects: PolicySubjects
    /// Whether they may publish to those topics (nil: the rule says nothing about publishing).
    public var publish: PolicyVerdict?
    /// Whether they may subscribe to and receive those topics (nil: says nothing).
    public var subscribe: PolicyVerdict?
    /// Where the rule is written.
    public var location: PolicyLocation

    /// Creates a rule.
    public init(
        filter: TopicFilter, subjects: PolicySubjects = .everyone, publish: PolicyVerdict? = nil,
        subscribe: PolicyVerdict? = nil, location: PolicyLocation
    ) {
        self.filter = filter
        self.subjects = subjects
        self.publish = publish
        self.subscribe = subscribe
        self.location = location
    }
}

/// The kernel-verified identity a policy is checked against: SO_PEERCRED's uid and gid and
/// SO_PEERGROUPS' supplementary groups, read by the server when the connection is accepted.
public struct PeerIdentity: Sendable, Hashable {
    /// User id.
    public var uid: UInt32
    /// Primary group id.
    public var gid: UInt32
    /// Supplementary group ids, sorted.
    public var groups: [UInt32]

    /// Creates an identity; `groups` need not be sorted.
    public init(uid: UInt32, gid: UInt32, groups: [UInt32] = []) {
        self.uid = uid
        self.gid = gid
        self.groups = groups.sorted()
    }

    /// Whether the primary group or a supplementary group is in `set`.
    public func isMember(ofAny set: Set<UInt32>) -> Bool {
        guard !set.isEmpty else { return false }
        return set.contains(gid) || groups.contains { set.contains($0) }
    }
}
