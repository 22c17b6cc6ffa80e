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
        /// The level this node stands for (empty for the root and `+` nodes).
        let level: [UInt8]
        /// Children by the hash of their level bytes, so a topic level read straight from
        /// the wire finds its child without building a key (no allocation per lookup).
        /// Each bucket is almost always one node; collisions compare the bytes.
        var literal: [Int: [Node]] = [:]
        var anyLevel: Node?
        /// Filters ending here (`a/b`).
        var terminal: [Entry] = []
        /// Filters ending here with `#` (`a/b/#`): match this level and everything below.
        var anyRemaining: [Entry] = []

        init(level: [UInt8] = []) { self.level = level }

        var isEmpty: Bool { literal.isEmpty && anyLevel == nil && terminal.isEmpty && anyRemaining.isEmpty }

        func child(_ level: UnsafeRawBufferPointer) -> Node? {
            guard let bucket = literal[SubscriptionIndex.hash(level)] else { return nil }
            for node in bucket where node.level.count == level.count {
                if node.level.withUnsafeBytes({ $0.elementsEqual(level) }) { return node }
            }
            return nil
        }

        func child(_ level: [UInt8]) -> Node? { level.withUnsafeBytes { child($0) } }

        func addChild(_ level: [UInt8]) -> Node {
            let node = Node(level: level)
            literal[level.withUnsafeBytes { SubscriptionIndex.hash($0) }, default: []].append(node)
            return node
        }

        func removeChild(_ node: Node) {
            let key = node.level.withUnsafeBytes { SubscriptionIndex.hash($0) }
            literal[key]?.removeAll { $0 === node }
            if literal[key]?.isEmpty == true { literal[key] = nil }
        }
    }

    /// FNV-1a over a level's bytes: levels are short, and SipHash (Hasher) cost a fifth of
    /// a route-cache miss. Collisions only cost a byte comparison; the dictionary rehashes
    /// the Int with its own seed, so bucket placement is still randomized.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return Int(truncatingIfNeeded: hash)
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
                node = node.child(bytes) ?? node.addChild(bytes)
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

    /// Makes every cached route stale (the policy changed who may receive what).
    func invalidateRoutes() {
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
            guard let child = node.child(bytes), remove(rest, from: child, peer: peer, subscriptionID: subscriptionID)
            else { return false }
            if child.isEmpty { node.removeChild(child) }
            return true
        }
    }

    /// Calls `body` for every subscription whose filter matches `topic` (a valid topic).
    /// A peer with several matching filters is reported once per filter; the caller dedups.
    /// Walks the topic's levels in place: nothing is allocated.
    func forEachMatch(_ topic: UnsafeRawBufferPointer, _ body: (Entry) -> Void) {
        // `$` topics are the broker's: wildcards at the first level do not reach them.
        let reserved = topic.first == Topic.reservedPrefix
        visit(root, topic, from: 0, isRoot: true, reserved: reserved, body)
    }

    /// `start` is the offset of the next level in `topic`, or `topic.count + 1` when every
    /// level has been consumed.
    private func visit(
        _ node: Node, _ topic: UnsafeRawBufferPointer, from start: Int, isRoot: Bool, reserved: Bool,
        _ body: (Entry) -> Void
    ) {
        let wildcardsAllowed = !(isRoot && reserved)
        if wildcardsAllowed { node.anyRemaining.forEach(body) }
        guard start <= topic.count else {
            node.terminal.forEach(body)
            return
        }
        var end = start
        while end < topic.count && topic[end] != Topic.separator { end += 1 }
        let level = UnsafeRawBufferPointer(rebasing: topic[start..<end])
        let next = end + 1
        if let child = node.child(level) { visit(child, topic, from: next, isRoot: false, reserved: reserved, body) }
        if wildcardsAllowed, let child = node.anyLevel {
            visit(child, topic, from: next, isRoot: false, reserved: reserved, body)
        }
    }
}
