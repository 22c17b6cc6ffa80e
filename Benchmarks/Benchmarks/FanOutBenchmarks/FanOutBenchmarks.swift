import Benchmark
import HeraldBenchSupport
import HeraldCore
import HeraldProtocol

// Fan-out in the routing core: one publisher, N subscribers on one exact topic. Each
// iteration feeds 1,000 pre-encoded PUBLISH frames (64-byte payload) as one read, then
// drains every subscriber, as the server writes every touched peer after each read. With
// `.kilo` every figure reads per routed message; divide by N for the cost per delivery.
// Steady state should allocate nothing: the warm-up in setup gives every output queue
// its working capacity, and the route is cached after the first message.

let topic = "home/livingroom/sensor-3/temperature"

/// A publisher, `subscriberCount` subscribers to `topic`, a batch of 1,000 PUBLISH frames
/// and a single one.
final class FanOutFixture {
    let driver: BrokerDriver
    let publisher: BrokerDriver.Peer
    let subscribers: [BrokerDriver.Peer]
    let batch = PublishBatch(topics: Array(repeating: topic, count: 1_000), payload: payload64)
    let single = PublishBatch(topics: [topic], payload: payload64)

    init(subscriberCount: Int, policy: Policy = .open) {
        var configuration = BrokerConfiguration()
        configuration.policy = policy
        let driver = BrokerDriver(configuration: configuration)
        self.driver = driver
        subscribers = (0..<subscriberCount).map { driver.connectClient("subscriber-\($0)") }
        for subscriber in subscribers { driver.subscribe(subscriber, to: [topic]) }
        publisher = driver.connectClient("publisher")
        let before = driver.delivered
        for _ in 0..<10 { driver.route(batch, from: publisher, drain: subscribers) }
        let delivered = driver.delivered - before
        precondition(delivered == UInt64(10 * 1_000 * subscriberCount), "\(delivered) deliveries")
    }
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 20,
        scalingFactor: .kilo,  // = the batch of 1,000 messages
        maxDuration: .seconds(2),
        maxIterations: 5_000
    )

    for subscriberCount in [1, 8, 100] {
        let subscribers = "\(subscriberCount) subscriber" + (subscriberCount == 1 ? "" : "s")
        Benchmark("1 publisher -> \(subscribers), feed + drain", configuration: configuration) {
            benchmark, fixture in
            blackHole(fixture.driver.route(fixture.batch, from: fixture.publisher, drain: fixture.subscribers))
        } setup: {
            FanOutFixture(subscriberCount: subscriberCount)
        }
    }

    // The same with a 100-rule policy (Policy.hundredRules): checked when the route is
    // built, not per message, so this should equal the run without a policy.
    Benchmark("1 publisher -> 8 subscribers, 100-rule policy, feed + drain", configuration: configuration) {
        benchmark, fixture in
        blackHole(fixture.driver.route(fixture.batch, from: fixture.publisher, drain: fixture.subscribers))
    } setup: {
        FanOutFixture(subscriberCount: 8, policy: .hundredRules)
    }

    // Light load: every message arrives in its own read, and the subscribers are drained
    // after each one (one epoll wakeup per message in the server).
    Benchmark("1 publisher -> 8 subscribers, one message per read", configuration: configuration) {
        benchmark, fixture in
        for _ in benchmark.scaledIterations {
            blackHole(fixture.driver.route(fixture.single, from: fixture.publisher, drain: fixture.subscribers))
        }
    } setup: {
        FanOutFixture(subscriberCount: 8)
    }

    // Batches of 1,000 again, plus InMemoryBroker.endBatch() after each: per-batch costs show
    // here. Its BrokerCore.takeTouched() also runs (at least once) in every epoll wakeup of the
    // server; its walk of BrokerCore.openPeers is the in-memory driver's own.
    Benchmark("1 publisher -> 8 subscribers, feed + drain + endBatch", configuration: configuration) {
        benchmark, fixture in
        blackHole(fixture.driver.route(fixture.batch, from: fixture.publisher, drain: fixture.subscribers))
        fixture.driver.broker.endBatch()
    } setup: {
        FanOutFixture(subscriberCount: 8)
    }
}
