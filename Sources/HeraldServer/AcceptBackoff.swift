/// When to look at the listening sockets again after the broker ran out of file descriptors.
///
/// At the descriptor limit `accept4` fails with EMFILE before it even looks at the backlog,
/// so a loop that retries at once never returns to `epoll_wait`: connected peers starve and
/// signals go unread. Instead the server stops watching its listeners and this schedule
/// says when to try again: after a short delay that doubles while descriptors stay
/// exhausted (up to a second), or at once when a peer closes and frees one. It also keeps
/// the numbers the log reports for each episode. Pure logic, so it is tested without sockets.
struct AcceptBackoff {
    /// First retry delay of an episode: short, because a busy broker frees descriptors often.
    static let initialDelay = 0.05
    /// Longest retry delay: a broker that recovers is accepting again within a second.
    static let maximumDelay = 1.0

    /// Whether the listeners are unwatched now.
    private(set) var isPaused = false
    /// When to watch the listeners again (monotonic seconds; infinity when not paused).
    private(set) var resumeAt = Double.infinity
    /// Whether an episode (descriptors ran out and the backlog has not drained since) is running.
    private(set) var inEpisode = false
    private var delay = AcceptBackoff.initialDelay
    private var episodeStart = 0.0
    private var refusedInEpisode: UInt64 = 0

    /// Descriptors ran out at `now` and `refused` waiting connections were refused. Pauses
    /// the listeners; returns true when this starts an episode (the moment to log it).
    mutating func exhausted(now: Double, refused: Int) -> Bool {
        let starts = !inEpisode
        if starts {
            inEpisode = true
            episodeStart = now
            refusedInEpisode = 0
            delay = AcceptBackoff.initialDelay
        }
        refusedInEpisode += UInt64(refused)
        isPaused = true
        resumeAt = now + delay
        delay = min(delay * 2, AcceptBackoff.maximumDelay)
        return starts
    }

    /// A peer closed at `now`, freeing a descriptor: try the listeners again at once.
    mutating func descriptorFreed(now: Double) {
        if isPaused { resumeAt = min(resumeAt, now) }
    }

    /// Whether the paused listeners should be watched again at `now`.
    func shouldResume(now: Double) -> Bool { isPaused && now >= resumeAt }

    /// The listeners are watched again.
    mutating func resumed() {
        isPaused = false
        resumeAt = .infinity
    }

    /// The backlog drained at `now` without running out of descriptors. Ends a running
    /// episode and returns how long it lasted and how many connections it refused.
    mutating func drained(now: Double) -> (seconds: Double, refused: UInt64)? {
        guard inEpisode else { return nil }
        inEpisode = false
        return (now - episodeStart, refusedInEpisode)
    }
}
