/// Lets a log line through at most once per interval and counts the ones it held back, so
/// a flood of one event (refused connections, say) cannot flood the log. Counters in
/// ``BrokerStatistics`` still count every event.
struct LogRateLimiter {
    /// Seconds between two lines.
    let interval: Double
    private var lastLogged = -Double.infinity
    private var heldBack = 0

    init(interval: Double) {
        self.interval = interval
    }

    /// Whether to log the event that happened at `now`; when it should be logged, the
    /// number of events held back since the previous line (for a "suppressed" field).
    mutating func admit(now: Double) -> Int? {
        guard now - lastLogged >= interval else {
            heldBack += 1
            return nil
        }
        lastLogged = now
        defer { heldBack = 0 }
        return heldBack
    }
}
