/// Why a byte sequence is not a valid frame. Each maps to the ``ErrorCode`` a broker sends.
public enum FrameDecodingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The type byte names no frame type of this version.
    case unknownType(UInt8)
    /// The header announces more bytes than the allowed maximum frame size.
    case frameTooLarge(length: Int, maximum: Int)
    /// The body ends before a field it must contain.
    case truncatedBody
    /// The body has bytes after its last field.
    case trailingBytes
    /// A length field (topic, name) points past the end of the body.
    case lengthOutOfRange
    /// A field that must be UTF-8 is not.
    case invalidUTF8
    /// A field holds a value the protocol does not define (e.g. slow-consumer policy 7).
    case invalidValue(String)
    /// Flag bits set that this frame type does not define.
    case unsupportedFlags(UInt8)

    /// The error code a broker reports for this decoding failure.
    public var errorCode: ErrorCode {
        switch self {
        case .unknownType: .unknownFrameType
        case .frameTooLarge: .frameTooLarge
        case .unsupportedFlags: .unsupportedFlags
        case .truncatedBody, .trailingBytes, .lengthOutOfRange, .invalidUTF8, .invalidValue: .malformedFrame
        }
    }

    public var description: String {
        switch self {
        case .unknownType(let type): "unknown frame type 0x\(String(type, radix: 16))"
        case .frameTooLarge(let length, let maximum): "frame of \(length) bytes exceeds the maximum of \(maximum)"
        case .truncatedBody: "frame body ends before its last field"
        case .trailingBytes: "frame body has bytes after its last field"
        case .lengthOutOfRange: "a length field points past the end of the frame body"
        case .invalidUTF8: "a text field is not valid UTF-8"
        case .invalidValue(let what): "invalid value: \(what)"
        case .unsupportedFlags(let flags): "flag bits 0x\(String(flags, radix: 16)) are not defined for this frame"
        }
    }
}
