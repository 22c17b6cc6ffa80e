import HeraldProtocol

/// The filters of a list of rules arranged as a trie of levels (like the
/// ``SubscriptionIndex``), so that the first rule matching a topic is found by walking the
/// topic's levels once instead of testing every rule: a 100-rule policy then costs a route
/// rebuild about what one more subscription lookup does.
final class RuleIndex {
    private final class Node {
        let level: [UInt8]
        var literal: [Int: [Node]] = [:]
        var anyLevel: Node?
        /// Lowest position of a rule whose filter ends here (`a/b`).
        var terminal = Int.max
        /// Lowest position of a rule whose filter ends here with `#` (`a/b/#`).
        var anyRemaining = Int.max

        init(level: [UInt8] = []) { self.level = level }

        func child(_ level: UnsafeRawBufferPointer) -> Node? {
            guard let bucket = literal[SubscriptionIndex.hash(level)] else { return nil }
            for node in bucket where node.level.count == level.count {
                if node.level.withUnsafeBytes({ $0.elementsEqual(level) }) { return node }
            }
            return nil
        }

        func child(adding level: [UInt8]) -> Node {
            if let existing = level.withUnsafeBytes({ child($0) }) { return existing }
            let node = Node(level: level)
            literal[level.withUnsafeBytes { SubscriptionIndex.hash($0) }, default: []].append(node)
            return node
        }
    }

    private let root = Node()
    /// Whether no rule was given.
    let isEmpty: Bool

    /// Indexes `filters`; a match reports the position of the filter in this array.
    init(_ filters: [TopicFilter]) {
        isEmpty = filters.isEmpty
        for (position, filter) in filters.enumerated() {
            var node = root
            for level in filter.levels {
                switch level {
                case .literal(let bytes):
                    node = node.child(adding: bytes)
                case .anyLevel:
                    if node.anyLevel == nil { node.anyLevel = Node() }
                    node = node.anyLevel!
                case .anyRemaining:
                    node.anyRemaining = min(node.anyRemaining, position)
                }
            }
            if filter.levels.last != .anyRemaining { node.terminal = min(node.terminal, position) }
        }
    }

    /// The position of the first filter that matches `topic` (a valid topic), or nil.
    func firstMatch(_ topic: UnsafeRawBufferPointer) -> Int? {
        guard !isEmpty, !topic.isEmpty else { return nil }
        var best = Int.max
        // A filter starting with a wildcard never matches a `$` topic (PROTOCOL.md §7).
        visit(root, topic, from: 0, wildcardsAllowed: topic[0] != Topic.reservedPrefix, best: &best)
        return best == Int.max ? nil : best
    }

    /// Walks the topic's levels from `start` below `node`; `start > topic.count` means the
    /// topic has no levels left.
    private func visit(
        _ node: Node, _ topic: UnsafeRawBufferPointer, from start: Int, wildcardsAllowed: Bool, best: inout Int
    ) {
        // `#` matches what is left, including nothing (`a/#` matches `a`).
        if wildcardsAllowed { best = min(best, node.anyRemaining) }
        guard start <= topic.count else {
            best = min(best, node.terminal)
            return
        }
        var end = start
        while end < topic.count && topic[end] != Topic.separator { end += 1 }
        let next = end + 1
        if let child = node.child(UnsafeRawBufferPointer(rebasing: topic[start..<end])) {
            visit(child, topic, from: next, wildcardsAllowed: true, best: &best)
        }
        if wildcardsAllowed, let any = node.anyLevel {
            visit(any, topic, from: next, wildcardsAllowed: true, best: &best)
        }
    }
}
