import HeraldProtocol

/// Every active subscription, arranged as a trie of filter levels so a topic finds its
/// subscribers by walking its own levels (plus the `+` and `#` branches), not by testing
/// each filter. Off the hot path: the core caches routes per publisher and only asks the
/// index when a topic is new to it or the subscriptions changed (``generation``).
final class SubscriptionIndex {
    struct Entry {
        let peer: PeerPointer
        let subscriptionID: UInt32
    }

    private final class Node {
        var literal: [ArraySlice<UInt8>: Node] = [:]
        var anyLevel: Node?
        /// Filters ending here (`a/b`).
        var terminal: [Entry] = []
        /// Filters ending here with `#` (`a/b/#`): match this level and everything below.
        var anyRemaining: [Entry] = []

        var isEmpty: Bool { literal.isEmpty && anyLevel == nil && terminal.isEmpty && anyRemaining.isEmpty }
    }

    private let root = Node()
    /// Changes whenever a subscription is added or removed; cached routes compare against it.
    private(set) var generation: UInt64 = 0
    private(set) var count = 0

    func insert(_ filter: TopicFilter, peer: PeerPointer, subscriptionID: UInt32) {
        var node = root
        for level in filter.levels {
            switch level {
            case .literal(let bytes):
                let key = bytes[...]
                if let next = node.literal[key] {
                    node = next
                } else {
                    let next = Node()
                    node.literal[key] = next
                    node = next
                }
            case .anyLevel:
                if node.anyLevel == nil { node.anyLevel = Node() }
                node = node.anyLevel!
            case .anyRemaining:
                node.anyRemaining.append(Entry(peer: peer, subscriptionID: subscriptionID))
                count += 1
                generation &+= 1
                return
            }
        }
        node.terminal.append(Entry(peer: peer, subscriptionID: subscriptionID))
        count += 1
        generation &+= 1
    }

    func remove(_ filter: TopicFilter, peer: PeerPointer, subscriptionID: UInt32) {
        if remove(filter.levels[...], from: root, peer: peer, subscriptionID: subscriptionID) {
            count -= 1
            generation &+= 1
        }
    }

    /// Removes the entry below `node`, pruning nodes left empty. Returns whether it was found.
    private func remove(
        _ levels: ArraySlice<TopicFilter.Level>, from node: Node, peer: PeerPointer, subscriptionID: UInt32
    ) -> Bool {
        func matches(_ entry: Entry) -> Bool { entry.peer == peer && entry.subscriptionID == subscriptionID }
        guard let level = levels.first else {
            guard let index = node.terminal.firstIndex(where: matches) else { return false }
            node.terminal.remove(at: index)
            return true
        }
        let rest = levels.dropFirst()
        switch level {
        case .anyRemaining:
            guard let index = node.anyRemaining.firstIndex(where: matches) else { return false }
            node.anyRemaining.remove(at: index)
            return true
        case .anyLevel:
            guard let child = node.anyLevel, remove(rest, from: child, peer: peer, subscriptionID: subscriptionID) else {
                return false
            }
            if child.isEmpty { node.anyLevel = nil }
            return true
        case .literal(let bytes):
            let key = bytes[...]
            guard let child = node.literal[key], remove(rest, from: child, peer: peer, subscriptionID: subscriptionID)
            else { return false }
            if child.isEmpty { node.literal[key] = nil }
            return true
        }
    }

    /// Calls `body` for every subscription whose filter matches `topic` (a valid topic).
    /// A peer with several matching filters is reported once per filter; the caller dedups.
    func forEachMatch(_ topic: UnsafeRawBufferPointer, _ body: (Entry) -> Void) {
        var levels: [ArraySlice<UInt8>] = []
        let bytes = Array(topic)
        levels = bytes.split(separator: Topic.separator, omittingEmptySubsequences: false)
        // `$` topics are the broker's: wildcards at the first level do not reach them.
        let reserved = bytes.first == Topic.reservedPrefix
        visit(root, levels[...], isRoot: true, reserved: reserved, body)
    }

    private func visit(
        _ node: Node, _ levels: ArraySlice<ArraySlice<UInt8>>, isRoot: Bool, reserved: Bool, _ body: (Entry) -> Void
    ) {
        let wildcardsAllowed = !(isRoot && reserved)
        if wildcardsAllowed { node.anyRemaining.forEach(body) }
        guard let level = levels.first else {
            node.terminal.forEach(body)
            return
        }
        let rest = levels.dropFirst()
        if let child = node.literal[level] { visit(child, rest, isRoot: false, reserved: reserved, body) }
        if wildcardsAllowed, let child = node.anyLevel { visit(child, rest, isRoot: false, reserved: reserved, body) }
    }
}
