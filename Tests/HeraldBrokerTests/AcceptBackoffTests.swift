import Testing

import HeraldCore

@testable import HeraldServer

@Suite("Accept back-off and log rate limit")
struct AcceptBackoffTests {
    @Test func delaysDoubleWhileDescriptorsStayOutAndAnEpisodeIsLoggedOnce() {
        var backoff = AcceptBackoff()
        let starts = backoff.exhausted(now: 10, refused: 3)
        #expect(starts)
        #expect(backoff.isPaused && backoff.resumeAt == 10 + AcceptBackoff.initialDelay)
        #expect(!backoff.shouldResume(now: 10.01))
        #expect(backoff.shouldResume(now: 10.05))
        backoff.resumed()
        // Still out: not a new episode, and the next delay is twice as long.
        let startsAgain = backoff.exhausted(now: 10.06, refused: 2)
        #expect(!startsAgain)
        #expect(abs(backoff.resumeAt - (10.06 + 2 * AcceptBackoff.initialDelay)) < 1e-9)
        for step in 0..<20 {
            backoff.resumed()
            _ = backoff.exhausted(now: 11 + Double(step), refused: 0)
        }
        #expect(backoff.resumeAt == 30 + AcceptBackoff.maximumDelay)
        let episode = backoff.drained(now: 40)
        #expect(episode?.refused == 5)
        #expect(episode?.seconds == 30)
        let second = backoff.drained(now: 41)
        #expect(second == nil)
    }

    @Test func aClosedPeerBringsTheRetryForward() {
        var backoff = AcceptBackoff()
        _ = backoff.exhausted(now: 5, refused: 0)
        backoff.descriptorFreed(now: 5.001)
        #expect(backoff.shouldResume(now: 5.001))
        backoff.resumed()
        backoff.descriptorFreed(now: 6)
        #expect(!backoff.isPaused && !backoff.shouldResume(now: 6))
    }

    @Test func logRateLimiterCountsWhatItHoldsBack() {
        var limiter = LogRateLimiter(interval: 1)
        let admitted = [0, 0.2, 0.9, 1.0, 5].map { limiter.admit(now: $0) }
        #expect(admitted == [0, nil, nil, 2, 0])
    }

    @Test func descriptorBudgetLeavesTheReserve() {
        #expect(DescriptorBudget.maxConnections(forDescriptorLimit: 1024) == (1024 - DescriptorBudget.reserve) / 2)
        #expect(DescriptorBudget.maxConnections(forDescriptorLimit: 10) == 1)
    }
}
