import HeraldProtocol

/// The snake_case names PROTOCOL.md and the vectors give the error codes.
public enum ErrorCodeNames {
    /// The name of `code` on the wire documentation, e.g. `frame_too_large`.
    public static func name(of code: ErrorCode) -> String {
        switch code {
        case .malformedFrame: "malformed_frame"
        case .unknownFrameType: "unknown_frame_type"
        case .frameTooLarge: "frame_too_large"
        case .handshakeRequired: "handshake_required"
        case .unsupportedVersion: "unsupported_version"
        case .notAuthorized: "not_authorized"
        case .invalidTopic: "invalid_topic"
        case .invalidFilter: "invalid_filter"
        case .topicTooLong: "topic_too_long"
        case .tooManySubscriptions: "too_many_subscriptions"
        case .unknownSubscription: "unknown_subscription"
        case .duplicateSubscription: "duplicate_subscription"
        case .reservedTopic: "reserved_topic"
        case .slowConsumer: "slow_consumer"
        case .tooManyConnections: "too_many_connections"
        case .unexpectedFrame: "unexpected_frame"
        case .brokerShuttingDown: "broker_shutting_down"
        case .unsupportedFlags: "unsupported_flags"
        case .notHerald: "not_herald"
        case .handshakeTimeout: "handshake_timeout"
        case .repliesNotRead: "replies_not_read"
        case .frameTimeout: "frame_timeout"
        case .inputBudgetExceeded: "input_budget_exceeded"
        case .forbidden: "forbidden"
        case .subscriptionRevoked: "subscription_revoked"
        case .retainedQuotaExceeded: "retained_quota_exceeded"
        case .noResponders: "no_responders"
        case .responderGone: "responder_gone"
        case .requestTimeout: "request_timeout"
        case .tooManyRequests: "too_many_requests"
        case .duplicateRequest: "duplicate_request"
        case .unknownCall: "unknown_call"
        case .responderBusy: "responder_busy"
        case .unknownPeer: "unknown_peer"
        case .directNotAccepted: "direct_not_accepted"
        case .unexpectedDescriptors: "unexpected_fds"
        case .descriptorCountMismatch: "fd_count_mismatch"
        case .tooManyDescriptors: "too_many_fds"
        case .descriptorQuotaExceeded: "fd_quota_exceeded"
        case .descriptorsNotAccepted: "fds_not_accepted"
        }
    }
}
