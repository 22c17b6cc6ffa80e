/// A validated subscription filter: levels separated by `/`, where a level may be `+`
/// (exactly one level) and the last level may be `#` (zero or more levels: `a/#` matches
/// `a`, `a/b` and `a/b/c`). A filter whose first level is a wildcard does not match topics
/// starting with `$`.
public struct TopicFilter: Hashable, Sendable, CustomStringConvertible {
    /// One level of a filter.
    public enum Level: Hashable, Sendable {
        /// Matches exactly these bytes.
        case literal([UInt8])
        /// `+`: any one level.
        case anyLevel
        /// `#`: this level and all below, or none.
        case anyRemaining
    }

    /// The filter as written.
    public let text: String
    /// Its levels, in order.
    public let levels: [Level]

    /// Whether the filter contains no wildcard, so it matches exactly one topic.
    public var isExact: Bool {
        levels.allSatisfy { if case .literal = $0 { true } else { false } }
    }

    public var description: String { text }

    /// Parses and validates `text`.
    public init(_ text: String, maxLength: Int = ProtocolLimits.defaultMaxTopicLength) throws(TopicError) {
        let bytes = Array(text.utf8)
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= maxLength else { throw .tooLong(length: bytes.count, maximum: maxLength) }
        guard !bytes.contains(0) else { throw .nulCharacter }
        var levels: [Level] = []
        for raw in bytes.split(separator: Topic.separator, omittingEmptySubsequences: false) {
            let level = Array(raw)
            if level.isEmpty { throw .emptyLevel }
            let hasWildcard = level.contains(Topic.singleLevelWildcard) || level.contains(Topic.multiLevelWildcard)
            if !hasWildcard {
                levels.append(.literal(level))
            } else if level == [Topic.singleLevelWildcard] {
                levels.append(.anyLevel)
            } else if level == [Topic.multiLevelWildcard] {
                levels.append(.anyRemaining)
            } else {
                throw .wildcardNotAlone
            }
        }
        if let hashIndex = levels.firstIndex(of: .anyRemaining), hashIndex != levels.count - 1 {
            throw .multiLevelWildcardNotLast
        }
        self.text = text
        self.levels = levels
    }

    /// Whether the topic string matches this filter.
    public func matches(_ topic: String) -> Bool {
        var topic = topic
        return topic.withUTF8 { matches(topic: UnsafeRawBufferPointer($0)) }
    }

    /// Whether the topic bytes (assumed valid) match this filter. Allocates nothing.
    public func matches(topic: UnsafeRawBufferPointer) -> Bool {
        guard !topic.isEmpty else { return false }
        // `$` topics belong to the broker: only a filter that names them literally matches.
        if topic[0] == Topic.reservedPrefix, let first = levels.first, first == .anyLevel || first == .anyRemaining {
            return false
        }
        var start = 0
        var levelIndex = 0
        while true {
            var end = start
            while end < topic.count && topic[end] != Topic.separator { end += 1 }
            guard levelIndex < levels.count else { return false }
            switch levels[levelIndex] {
            case .anyRemaining:
                return true
            case .anyLevel:
                break
            case .literal(let literal):
                guard literal.count == end - start else { return false }
                for offset in 0..<literal.count where literal[offset] != topic[start + offset] { return false }
            }
            levelIndex += 1
            if end == topic.count {
                // Topic exhausted: match if the filter is too, or only `#` remains.
                return levelIndex == levels.count || (levelIndex == levels.count - 1 && levels[levelIndex] == .anyRemaining)
            }
            start = end + 1
        }
    }
}
