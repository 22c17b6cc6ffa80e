/// Numeric error codes carried by ERROR frames (and GOODBYE reasons).
///
/// Codes marked *fatal* are always sent with ``FrameFlags/fatal`` and the broker closes the
/// connection after them; the others leave the session open.
public enum ErrorCode: UInt16, Sendable, CaseIterable, CustomStringConvertible {
    /// Fatal. A frame's fields contradict each other or its length (e.g. topic longer than body).
    case malformedFrame = 1
    /// Fatal. The type byte names no frame this version defines.
    case unknownFrameType = 2
    /// Fatal. The header announces a frame longer than the negotiated maximum.
    case frameTooLarge = 3
    /// Fatal. Something other than HELLO arrived before the handshake completed.
    case handshakeRequired = 4
    /// Fatal. No protocol version in the client's range is supported.
    case unsupportedVersion = 5
    /// Fatal. The broker's admission policy refuses this peer's credentials.
    case notAuthorized = 6
    /// A topic is empty, not UTF-8, has an empty level, or contains `+`, `#` or NUL.
    case invalidTopic = 7
    /// A filter is not valid (`+` or `#` not alone in a level, `#` not last, …).
    case invalidFilter = 8
    /// A topic or filter is longer than the broker's maximum.
    case topicTooLong = 9
    /// The peer has as many subscriptions as the broker allows.
    case tooManySubscriptions = 10
    /// UNSUBSCRIBE named a subscription id that is not active.
    case unknownSubscription = 11
    /// SUBSCRIBE reused a subscription id that is still active.
    case duplicateSubscription = 12
    /// Topics starting with `$` belong to the broker; clients may not publish them.
    case reservedTopic = 13
    /// Fatal. The peer chose `disconnect` and fell more than its output limit behind.
    case slowConsumer = 14
    /// Fatal. The broker is at its connection limit.
    case tooManyConnections = 15
    /// Fatal. A frame arrived that this direction or state does not allow (second HELLO, …).
    case unexpectedFrame = 16
    /// GOODBYE reason: the broker is stopping.
    case brokerShuttingDown = 17
    /// A frame set flag bits this version does not define; the frame was ignored.
    case unsupportedFlags = 18
    /// Fatal. The HELLO did not start with the Herald magic: not a Herald client.
    case notHerald = 19
    /// Fatal. The client did not finish the handshake in time.
    case handshakeTimeout = 20
    /// Fatal. The client kept sending requests without reading the replies, which piled up
    /// past its output limit plus the broker's allowance for replies.
    case repliesNotRead = 21
    /// Fatal. A frame did not arrive completely within the broker's frame timeout after
    /// its first byte.
    case frameTimeout = 22
    /// Fatal. The broker's shared budget for partially received frames is used up; the
    /// connection whose partial frame went over it is closed.
    case inputBudgetExceeded = 23
    /// The broker's policy does not allow this PUBLISH or SUBSCRIBE; the message names the
    /// rule (file and line) that denied it. The frame was ignored.
    case forbidden = 24
    /// A subscription was removed because a reloaded policy no longer allows it. The
    /// `request_id` field carries the subscription's id; the session goes on.
    case subscriptionRevoked = 25
    /// A retained PUBLISH would take the publisher's uid past its quota of retained
    /// messages or retained bytes. Nothing was stored or delivered; the session goes on.
    case retainedQuotaExceeded = 26
    /// A REQUEST found no responder subscription that matches its topic (and that the
    /// policy lets receive it). Answered at once; `request_id` is the REQUEST's.
    case noResponders = 27
    /// The responder a REQUEST went to closed its connection before it replied.
    case responderGone = 28
    /// A REQUEST's `timeout_ms` passed without a REPLY; a later REPLY is refused with `unknown_call`.
    case requestTimeout = 29
    /// The connection already has the maximum number of REQUESTs waiting for a reply.
    case tooManyRequests = 30
    /// A REQUEST reused the `request_id` of one of the connection's REQUESTs still waiting.
    case duplicateRequest = 31
    /// A REPLY names a call that is not waiting for this connection's answer (answered,
    /// timed out, its requester gone, or never sent to it); `request_id` is the `call_id`.
    case unknownCall = 32
    /// The responder chosen for a REQUEST has more output queued than its output limit:
    /// the request was not sent to it.
    case responderBusy = 33
    /// A SEND names a peer id that is not connected (never was, or has gone).
    case unknownPeer = 34
    /// A SEND names a peer that does not accept direct messages (its HELLO did not announce
    /// the `direct` capability).
    case directNotAccepted = 35
    /// Fatal. File descriptors arrived from a client that did not announce the `fds`
    /// capability (or before WELCOME); the broker closed them.
    case unexpectedDescriptors = 36
    /// Fatal. The descriptors received do not match the counts the frames announced (fewer
    /// than a frame's `fd_count`, or some left over that no frame announced).
    case descriptorCountMismatch = 37
    /// A frame carried more descriptors than the per-message maximum (16); they were closed
    /// and the frame ignored.
    case tooManyDescriptors = 38
    /// The sender's uid (or the whole broker) holds as many passed descriptors as it may;
    /// they were closed and the frame ignored until receivers take theirs.
    case descriptorQuotaExceeded = 39
    /// A SEND or REPLY with descriptors names a peer that did not announce the `fds`
    /// capability; nothing was delivered and the descriptors were closed.
    case descriptorsNotAccepted = 40

    /// Whether the broker closes the connection after sending this code.
    public var isFatal: Bool {
        switch self {
        case .malformedFrame, .unknownFrameType, .frameTooLarge, .handshakeRequired, .unsupportedVersion,
            .notAuthorized, .slowConsumer, .tooManyConnections, .unexpectedFrame, .notHerald, .handshakeTimeout,
            .repliesNotRead, .frameTimeout, .inputBudgetExceeded, .unexpectedDescriptors, .descriptorCountMismatch:
            true
        case .invalidTopic, .invalidFilter, .topicTooLong, .tooManySubscriptions, .unknownSubscription,
            .duplicateSubscription, .reservedTopic, .brokerShuttingDown, .unsupportedFlags, .forbidden,
            .subscriptionRevoked, .retainedQuotaExceeded, .noResponders, .responderGone, .requestTimeout,
            .tooManyRequests, .duplicateRequest, .unknownCall, .responderBusy, .unknownPeer, .directNotAccepted,
            .tooManyDescriptors, .descriptorQuotaExceeded, .descriptorsNotAccepted:
            false
        }
    }

    public var description: String {
        switch self {
        case .malformedFrame: "malformed frame"
        case .unknownFrameType: "unknown frame type"
        case .frameTooLarge: "frame too large"
        case .handshakeRequired: "handshake required"
        case .unsupportedVersion: "unsupported protocol version"
        case .notAuthorized: "not authorized"
        case .invalidTopic: "invalid topic"
        case .invalidFilter: "invalid filter"
        case .topicTooLong: "topic too long"
        case .tooManySubscriptions: "too many subscriptions"
        case .unknownSubscription: "unknown subscription"
        case .duplicateSubscription: "duplicate subscription"
        case .reservedTopic: "reserved topic"
        case .slowConsumer: "slow consumer"
        case .tooManyConnections: "too many connections"
        case .unexpectedFrame: "unexpected frame"
        case .brokerShuttingDown: "broker shutting down"
        case .unsupportedFlags: "unsupported flags"
        case .notHerald: "not a Herald client"
        case .handshakeTimeout: "handshake timeout"
        case .repliesNotRead: "replies not read"
        case .frameTimeout: "frame timeout"
        case .inputBudgetExceeded: "input budget exceeded"
        case .forbidden: "forbidden"
        case .subscriptionRevoked: "subscription revoked"
        case .retainedQuotaExceeded: "retained quota exceeded"
        case .noResponders: "no responders"
        case .responderGone: "responder gone"
        case .requestTimeout: "request timeout"
        case .tooManyRequests: "too many requests"
        case .duplicateRequest: "duplicate request"
        case .unknownCall: "unknown call"
        case .responderBusy: "responder busy"
        case .unknownPeer: "unknown peer"
        case .directNotAccepted: "direct messages not accepted"
        case .unexpectedDescriptors: "unexpected file descriptors"
        case .descriptorCountMismatch: "file descriptor count mismatch"
        case .tooManyDescriptors: "too many file descriptors"
        case .descriptorQuotaExceeded: "file descriptor quota exceeded"
        case .descriptorsNotAccepted: "file descriptors not accepted"
        }
    }
}
