/// Why a topic or filter is not valid.
public enum TopicError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Zero bytes long.
    case empty
    /// Longer than the broker's maximum.
    case tooLong(length: Int, maximum: Int)
    /// Not valid UTF-8.
    case invalidUTF8
    /// Starts or ends with `/`, or has `//`.
    case emptyLevel
    /// A topic (not a filter) contains `+` or `#`.
    case wildcardInTopic
    /// A filter has `+` or `#` sharing a level with other characters.
    case wildcardNotAlone
    /// A filter has `#` somewhere other than its last level.
    case multiLevelWildcardNotLast
    /// Contains a NUL character.
    case nulCharacter
    /// Starts with `$`, which is reserved for topics the broker publishes.
    case reserved

    /// The ERROR code a broker sends for this problem in a PUBLISH (`isFilter == false`) or SUBSCRIBE.
    public func errorCode(isFilter: Bool) -> ErrorCode {
        switch self {
        case .tooLong: .topicTooLong
        case .reserved: .reservedTopic
        default: isFilter ? .invalidFilter : .invalidTopic
        }
    }

    public var description: String {
        switch self {
        case .empty: "is empty"
        case .tooLong(let length, let maximum): "is \(length) bytes long, the maximum is \(maximum)"
        case .invalidUTF8: "is not valid UTF-8"
        case .emptyLevel: "has an empty level (leading, trailing or double '/')"
        case .wildcardInTopic: "contains a wildcard ('+' or '#'), which only filters may"
        case .wildcardNotAlone: "has a wildcard that does not fill its whole level"
        case .multiLevelWildcardNotLast: "has '#' before its last level"
        case .nulCharacter: "contains a NUL character"
        case .reserved: "starts with '$', which is reserved for the broker"
        }
    }
}
