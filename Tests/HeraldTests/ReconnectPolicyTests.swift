import Testing

@testable import Herald

@Suite("Reconnect policy")
struct ReconnectPolicyTests {
    @Test func delaysDoubleUpToTheMaximumWithinTheJitter() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(20), maximumDelay: .seconds(1), jitter: 0.2)
        for (attempt, base) in [(1, 20), (2, 40), (3, 80), (6, 640), (7, 1000), (30, 1000)] {
            let delay = policy.delay(beforeAttempt: attempt)
            #expect(delay >= .milliseconds(base) * 0.8 && delay <= .milliseconds(base) * 1.2, "attempt \(attempt): \(delay)")
        }
    }

    @Test func noJitterIsExact() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(50), maximumDelay: .seconds(2), jitter: 0)
        #expect(policy.delay(beforeAttempt: 1) == .milliseconds(50))
        #expect(policy.delay(beforeAttempt: 3) == .milliseconds(200))
    }
}
