import HeraldProtocol

/// Why the broker refuses a new connection, checked in the order PROTOCOL.md §5.2 gives:
/// admission policy, connection limit, then the two handshake limits. Each case carries
/// what its ERROR message names, so equal refusals encode to equal frames (the server
/// caches the last one: refusing a flood must cost no allocation per connection).
enum AdmissionRefusal: Equatable {
    /// The uid is not admitted by the policy.
    case notAuthorized(uid: UInt32)
    /// The broker has as many connections as it allows.
    case connectionLimit(Int)
    /// As many connections as the broker allows are in the handshake.
    case handshakeLimit(Int)
    /// This uid has as many connections in the handshake as one uid may have.
    case handshakeLimitForUID(uid: UInt32, limit: Int)
    /// This uid has as many connections open as one uid may have.
    case connectionLimitForUID(uid: UInt32, limit: Int)

    /// The fatal ERROR code the refused peer gets.
    var code: ErrorCode {
        switch self {
        case .notAuthorized: .notAuthorized
        case .connectionLimit, .handshakeLimit, .handshakeLimitForUID, .connectionLimitForUID: .tooManyConnections
        }
    }

    /// The ERROR message: what happened, for the person reading the client's error.
    var message: String {
        switch self {
        case .notAuthorized(let uid): "uid \(uid) is not authorized to connect to this bus"
        case .connectionLimit(let limit): "the broker has reached its limit of \(limit) connections"
        case .handshakeLimit(let limit):
            "the broker already has its maximum of \(limit) connections that have not completed the handshake"
        case .handshakeLimitForUID(let uid, let limit):
            "uid \(uid) already has its maximum of \(limit) connections that have not completed the handshake"
        case .connectionLimitForUID(let uid, let limit):
            "uid \(uid) already has its maximum of \(limit) connections open"
        }
    }
}
