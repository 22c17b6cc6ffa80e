/// How a ``Bus`` comes back after its broker went away (restarted, crashed, stopped when
/// idle under socket activation): it reconnects with exponential backoff and jitter, says
/// HELLO again, re-establishes every live subscription with its original filter and id, and
/// reports both events on ``Bus/events()``. Subscriptions keep iterating across it; the
/// first message after a reconnect has ``Message/afterReconnect`` set, because messages
/// published while no connection existed are not delivered.
///
/// Not retried: a broker that refuses this client (``HeraldError/notAuthorized(uid:message:)``,
/// ``HeraldError/unsupportedVersion``) or closes it with a fatal error for something the
/// client did (a protocol error, `slow_consumer`): those end the bus as without reconnection.
public struct ReconnectPolicy: Sendable, Equatable {
    /// What happens to messages published while the bus is reconnecting.
    public enum Publishing: Sendable, Equatable {
        /// Keep them, up to `limit` bytes of frames, and send them, once and in order, as
        /// soon as the bus is connected again. A publish past the limit throws
        /// ``HeraldError/connectionLost(_:)`` saying so.
        case buffer(limit: Int)
        /// Throw ``HeraldError/connectionLost(_:)`` at once.
        case fail
    }

    /// Wait before the first attempt (then doubled after each failed one).
    public var initialDelay: Duration
    /// Longest wait between two attempts.
    public var maximumDelay: Duration
    /// Each wait is varied at random by up to this fraction, so clients of one broker do
    /// not all come back at the same instant.
    public var jitter: Double
    /// Give up (the bus then ends with the last error) after trying this long; nil: never.
    public var giveUpAfter: Duration?
    /// Messages published while reconnecting.
    public var publishing: Publishing

    /// Creates a policy; the defaults suit a broker that systemd restarts or socket-activates.
    public init(
        initialDelay: Duration = .milliseconds(20), maximumDelay: Duration = .seconds(2), jitter: Double = 0.2,
        giveUpAfter: Duration? = nil, publishing: Publishing = .buffer(limit: 1 << 20)
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.jitter = jitter
        self.giveUpAfter = giveUpAfter
        self.publishing = publishing
    }

    /// The wait before attempt `attempt` (1 is the first).
    func delay(beforeAttempt attempt: Int) -> Duration {
        var delay = initialDelay
        for _ in 1..<max(1, attempt) where delay < maximumDelay { delay *= 2 }
        delay = min(delay, maximumDelay)
        let factor = 1 + Double.random(in: -jitter...jitter)
        return delay * max(0, factor)
    }
}
