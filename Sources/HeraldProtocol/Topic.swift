/// The topic grammar: UTF-8 text, levels separated by `/`, no empty level, no NUL, no
/// wildcard. Topics starting with `$` are reserved for the broker.
public enum Topic {
    /// The level separator.
    public static let separator = UInt8(ascii: "/")
    /// The single-level wildcard (filters only).
    public static let singleLevelWildcard = UInt8(ascii: "+")
    /// The multi-level wildcard (filters only, last level).
    public static let multiLevelWildcard = UInt8(ascii: "#")
    /// First byte of topics reserved for the broker.
    public static let reservedPrefix = UInt8(ascii: "$")

    /// Checks `bytes` as a topic a client may publish on. Allocates nothing: the broker calls
    /// it for every PUBLISH whose topic is not in its route cache.
    @inlinable
    public static func validatePublishable(_ bytes: UnsafeRawBufferPointer, maxLength: Int) -> TopicError? {
        if let error = validate(bytes, maxLength: maxLength) { return error }
        return bytes[0] == 0x24 ? .reserved : nil  // '$'
    }

    /// Checks `bytes` against the topic grammar (a `$` topic is well-formed here).
    @inlinable
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxLength: Int) -> TopicError? {
        guard !bytes.isEmpty else { return .empty }
        guard bytes.count <= maxLength else { return .tooLong(length: bytes.count, maximum: maxLength) }
        // Literals, not the static constants: in another module each use of a `static let`
        // is an accessor call, twice per byte on the broker's route-cache-miss path.
        var previous: UInt8 = 0x2F  // a leading '/' is an empty level
        for byte in bytes {
            switch byte {
            case 0x2F where previous == 0x2F: return .emptyLevel  // "//"
            case 0x2B, 0x23: return .wildcardInTopic  // '+', '#'
            case 0: return .nulCharacter
            default: break
            }
            previous = byte
        }
        if previous == 0x2F { return .emptyLevel }
        return UTF8Validation.isValid(bytes) ? nil : .invalidUTF8
    }

    /// Checks a topic string against the grammar, including the `$` reservation.
    public static func validatePublishable(_ topic: String, maxLength: Int = ProtocolLimits.defaultMaxTopicLength)
        throws(TopicError)
    {
        var topic = topic
        let error = topic.withUTF8 { validatePublishable(UnsafeRawBufferPointer($0), maxLength: maxLength) }
        if let error { throw error }
    }
}
