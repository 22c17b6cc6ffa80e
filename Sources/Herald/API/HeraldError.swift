#if canImport(Glibc)
import Glibc
#endif
import HeraldProtocol

/// Everything that can go wrong when talking to a Herald broker, named for what happened
/// to the caller rather than for the system call that failed.
public enum HeraldError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Nothing accepted the connection at `address` (no broker running, wrong name, no permission).
    case brokerUnreachable(address: String, reason: String)
    /// The broker's admission policy refused this process, which runs as `uid`.
    case notAuthorized(uid: UInt32, message: String)
    /// The process listening on the address runs as `uid` (process `pid`), which
    /// ``BusOptions/brokerTrust`` does not accept: nothing was sent to it (see ``BrokerTrust``).
    case untrustedBroker(uid: UInt32, pid: Int32)
    /// The broker answered the handshake with something other than WELCOME, or nothing usable.
    case handshakeFailed(String)
    /// The broker speaks no protocol version this library speaks.
    case unsupportedVersion
    /// A topic is not publishable (`reason` says why, e.g. "it has an empty level"); nothing was sent.
    case invalidTopic(String, reason: String)
    /// A subscription filter is not valid (`reason` says why).
    case invalidFilter(String, reason: String)
    /// A message's frame (8-byte header, topic and payload) of `size` bytes exceeds the
    /// broker's `maximum`; nothing was sent.
    case messageTooLarge(size: Int, maximum: Int)
    /// The connection already holds as many subscriptions as the broker allows.
    case tooManySubscriptions
    /// The broker's policy does not allow this publish or subscription; `message` names the
    /// rule that denied it (file and line of the broker's configuration).
    case forbidden(String)
    /// The broker's reloaded policy no longer allows the subscription to `filter`: it ended
    /// (`message` names the rule).
    case subscriptionRevoked(filter: String, message: String)
    /// A retained publish would take this user past the broker's quota of retained messages
    /// or bytes (`message` says which); nothing was stored or delivered.
    case retainedQuotaExceeded(String)
    /// No responder is subscribed to the request's topic (``Bus/request(_:_:timeout:)``):
    /// answered at once by the broker, not after the timeout.
    case noResponders(String)
    /// The responder failed the request (``IncomingRequest/fail(code:_:)``) with its own
    /// `code` (never 0) and explanation.
    case requestFailed(code: UInt32, message: String)
    /// The responder the request went to closed its connection before it replied.
    case responderGone(String)
    /// The broker did not pass the request on: this connection has too many requests
    /// waiting, or every matching responder is too far behind (`message` says which).
    case requestRefused(String)
    /// No connected peer has the id a direct message was sent to (``Bus/send(to:_:_:)``).
    case unknownPeer(String)
    /// The peer a direct message was sent to does not accept direct messages.
    case directNotAccepted(String)
    /// File descriptors could not be passed: the broker does not support it, refused them
    /// (more than 16 in one message, the user's quota of descriptors in flight, a direct
    /// message or answer to a peer that does not accept descriptors), or this process could
    /// not duplicate or create them (`message` says which).
    case descriptorsRefused(String)
    /// The broker refused a request with an error this library has no specific case for.
    /// `code` is an ``ErrorCode`` raw value (possibly one newer than this library).
    case brokerError(code: UInt16, message: String)
    /// The broker disconnected this client for falling behind (slow-consumer policy `disconnect`).
    case slowConsumerDisconnected(String)
    /// The broker ended the connection: it said GOODBYE (for example because it is shutting
    /// down) or closed the socket.
    case connectionClosed(reason: String)
    /// The connection broke: an I/O error, or the broker violated the protocol.
    case connectionLost(String)
    /// The bus was closed with ``Bus/close()``, or is being closed.
    case closed
    /// The broker did not answer in time.
    case timeout

    /// The error a broker's ERROR frame stands for. `filter` names the filter of the
    /// SUBSCRIBE the error answers, if it answers one.
    public static func fromBroker(_ frame: ErrorFrame, filter: String? = nil) -> HeraldError {
        switch frame.knownCode {
        case .notAuthorized: .notAuthorized(uid: UInt32(getuid()), message: frame.message)
        case .unsupportedVersion: .unsupportedVersion
        case .invalidFilter: .invalidFilter(filter ?? "", reason: frame.message)
        case .topicTooLong where filter != nil: .invalidFilter(filter ?? "", reason: frame.message)
        case .tooManySubscriptions: .tooManySubscriptions
        case .forbidden: .forbidden(frame.message)
        case .subscriptionRevoked: .subscriptionRevoked(filter: filter ?? "", message: frame.message)
        case .retainedQuotaExceeded: .retainedQuotaExceeded(frame.message)
        case .slowConsumer: .slowConsumerDisconnected(frame.message)
        case .noResponders: .noResponders(frame.message)
        case .responderGone: .responderGone(frame.message)
        case .requestTimeout: .timeout
        case .tooManyRequests, .responderBusy: .requestRefused(frame.message)
        case .unknownPeer: .unknownPeer(frame.message)
        case .directNotAccepted: .directNotAccepted(frame.message)
        case .tooManyDescriptors, .descriptorQuotaExceeded, .descriptorsNotAccepted: .descriptorsRefused(frame.message)
        default: .brokerError(code: frame.code, message: frame.message)
        }
    }

    /// A human-readable explanation, suitable for an error line.
    public var description: String {
        switch self {
        case .brokerUnreachable(let address, let reason):
            "cannot reach a Herald broker at \(address): \(reason)"
        case .untrustedBroker(let uid, let pid):
            "the process listening there runs as uid \(uid) (pid \(pid)), which is not trusted as a broker "
                + "(expected this user or root; see BusOptions.brokerTrust); nothing was sent to it"
        case .notAuthorized(let uid, let message):
            message.isEmpty ? "the broker does not allow uid \(uid) to connect" : "the broker refused the connection: \(message)"
        case .handshakeFailed(let message):
            "handshake with the broker failed: \(message)"
        case .unsupportedVersion:
            "the broker speaks no protocol version this client supports"
        case .invalidTopic(let topic, let reason):
            "invalid topic '\(topic)': \(reason)"
        case .invalidFilter(let filter, let reason):
            "invalid filter '\(filter)': \(reason)"
        case .messageTooLarge(let size, let maximum):
            "message of \(size) bytes (header, topic and payload) exceeds the broker's maximum frame size of \(maximum) bytes"
        case .tooManySubscriptions:
            "the connection already has as many subscriptions as the broker allows"
        case .forbidden(let message):
            "forbidden by the broker's policy: \(message)"
        case .subscriptionRevoked(let filter, let message):
            "subscription to '\(filter)' ended by the broker's policy: \(message)"
        case .retainedQuotaExceeded(let message):
            "over the broker's retained-message quota: \(message)"
        case .noResponders(let message):
            "nobody answers this request: \(message)"
        case .requestFailed(let code, let message):
            "the responder failed the request (code \(code)): \(message)"
        case .responderGone(let message):
            "the request was not answered: \(message)"
        case .requestRefused(let message):
            "the broker did not pass the request on: \(message)"
        case .unknownPeer(let message):
            "the direct message was not delivered: \(message)"
        case .directNotAccepted(let message):
            "the direct message was not delivered: \(message)"
        case .descriptorsRefused(let message):
            "file descriptors not passed: \(message)"
        case .brokerError(let code, let message):
            "broker error \(code)" + (ErrorCode(rawValue: code).map { " (\($0))" } ?? "") + ": \(message)"
        case .slowConsumerDisconnected(let message):
            "disconnected by the broker for not keeping up (slow consumer)" + (message.isEmpty ? "" : ": \(message)")
        case .connectionClosed(let reason):
            "the broker closed the connection: \(reason)"
        case .connectionLost(let message):
            "connection to the broker lost: \(message)"
        case .closed:
            "the bus connection is closed"
        case .timeout:
            "the broker did not answer in time"
        }
    }
}
