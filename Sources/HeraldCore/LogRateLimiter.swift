/// Lets a log line through at most once per interval and counts the ones it held back, so
/// a flood of one event (refused connections, say) cannot flood the log. Counters in
/// ``BrokerStatistics`` still count every event.
public struct LogRateLimiter: Sendable {
    /// Seconds between two lines.
    public let interval: Double
    private var lastLogged = -Double.infinity
    private var heldBack = 0

    /// A limiter that lets one line through per `interval` seconds.
    public init(interval: Double) {
        self.interval = interval
    }

    /// Whether to log the event that happened at `now`; when it should be logged, the
    /// number of events held back since the previous line (for a "suppressed" field).
    public mutating func admit(now: Double) -> Int? {
        guard now - lastLogged >= interval else {
            heldBack += 1
            return nil
        }
        lastLogged = now
        defer { heldBack = 0 }
        return heldBack
    }
}
