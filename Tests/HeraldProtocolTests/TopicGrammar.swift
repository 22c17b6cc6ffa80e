import HeraldProtocol

/// String and byte front-ends to ``Topic``'s pointer-based checks.
enum TopicGrammar {
    /// The grammar error of `bytes` as a topic (a `$` topic is well-formed), or nil.
    static func grammarError(_ bytes: [UInt8], maxLength: Int = ProtocolLimits.defaultMaxTopicLength) -> TopicError? {
        bytes.withUnsafeBytes { Topic.validate($0, maxLength: maxLength) }
    }

    /// What a broker objects to when a client publishes on `bytes`, or nil.
    static func publishError(_ bytes: [UInt8], maxLength: Int = ProtocolLimits.defaultMaxTopicLength) -> TopicError? {
        bytes.withUnsafeBytes { Topic.validatePublishable($0, maxLength: maxLength) }
    }

    /// The error parsing `text` as a filter, or nil.
    static func filterError(_ text: String, maxLength: Int = ProtocolLimits.defaultMaxTopicLength) -> TopicError? {
        do {
            _ = try TopicFilter(text, maxLength: maxLength)
            return nil
        } catch {
            return error
        }
    }
}
