import HeraldProtocol

/// How two filters relate, for deciding a SUBSCRIBE against the policy's rules: whether
/// some topic matches both (`overlaps`), and whether every topic one matches the other
/// matches too (`covers`). Both follow the topic grammar of PROTOCOL.md §2, including the
/// rule that a filter starting with a wildcard never matches a `$` topic.
extension TopicFilter {
    /// Whether at least one topic matches both `self` and `other`.
    func overlaps(_ other: TopicFilter) -> Bool {
        if startsWithReservedLiteral != other.startsWithReservedLiteral
            && (startsWithWildcard || other.startsWithWildcard)
        {
            return false
        }
        var position = 0
        while true {
            let mine = position < levels.count ? levels[position] : nil
            let theirs = position < other.levels.count ? other.levels[position] : nil
            switch (mine, theirs) {
            case (nil, nil), (.anyRemaining, _), (_, .anyRemaining): return true
            case (nil, _), (_, nil): return false
            case (.literal(let a), .literal(let b)) where a != b: return false
            default: position += 1
            }
        }
    }

    /// Whether every topic `other` matches is matched by `self` too.
    func covers(_ other: TopicFilter) -> Bool {
        if startsWithWildcard && other.startsWithReservedLiteral { return false }
        var position = 0
        while true {
            let mine = position < levels.count ? levels[position] : nil
            let theirs = position < other.levels.count ? other.levels[position] : nil
            switch (mine, theirs) {
            case (.anyRemaining, _): return true
            case (nil, nil): return true
            case (nil, _), (_, nil), (_, .anyRemaining): return false
            case (.anyLevel, _): position += 1
            case (.literal, .anyLevel): return false
            case (.literal(let a), .literal(let b)): if a != b { return false } else { position += 1 }
            }
        }
    }

    private var startsWithWildcard: Bool {
        switch levels.first {
        case .anyLevel, .anyRemaining: true
        default: false
        }
    }

    private var startsWithReservedLiteral: Bool {
        if case .literal(let bytes) = levels.first { return bytes.first == Topic.reservedPrefix }
        return false
    }
}
