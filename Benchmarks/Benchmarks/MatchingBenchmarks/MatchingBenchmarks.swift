import Benchmark
import HeraldBenchSupport
import HeraldCore
import HeraldProtocol

// Routing against 10,000 subscriptions (100 subscribers x 100 filters) through the public
// InMemoryBroker, plus one run against 100 subscriptions for reference. Each iteration feeds
// 1,000 PUBLISH frames (64-byte payload) as one read and drains every subscriber, so with
// `.kilo` every figure reads per published message.
//
// Topic k (0..<10,000) is `plant/<k>/line/temperature`. Subscription k is one of
//   exact     plant/<k>/line/temperature
//   a/+/c     plant/<k>/+/temperature
//   a/#       plant/<k>/#
//   +/b/c/d   +/<k>/line/temperature     (a first-level wildcard: every walk visits it)
// so in every mix each topic matches exactly one subscription: one delivery per message,
// and only the shape of the trie walk changes between mixes.

enum FilterForm: CaseIterable {
    case exact, plusMiddle, hashTail, plusFirst

    func filter(_ key: Int) -> String {
        switch self {
        case .exact: "plant/\(key)/line/temperature"
        case .plusMiddle: "plant/\(key)/+/temperature"
        case .hashTail: "plant/\(key)/#"
        case .plusFirst: "+/\(key)/line/temperature"
        }
    }
}

func topic(_ key: Int) -> String { "plant/\(key)/line/temperature" }

struct Mix: Sendable {
    let name: String
    /// The form of subscription `key`.
    let form: @Sendable (Int) -> FilterForm

    static let all = [
        Mix(name: "all exact") { _ in .exact },
        Mix(name: "50% exact, 25% a/+/c, 25% a/#") { key in
            key % 2 == 0 ? .exact : key % 4 == 1 ? .plusMiddle : .hashTail
        },
        Mix(name: "10% exact, 90% wildcard") { key in
            switch key % 10 {
            case 0: .exact
            case 1...3: .plusMiddle
            case 4...6: .hashTail
            default: .plusFirst
            }
        },
    ]
}

/// A broker holding `subscriptionCount` subscriptions of `mix` spread over at most 100
/// subscribers, a publisher, and the batches of 1,000 PUBLISH frames to route.
final class MatchingFixture {
    let driver: BrokerDriver
    let publisher: BrokerDriver.Peer
    let subscribers: [BrokerDriver.Peer]
    let batches: [PublishBatch]
    private var next = 0

    /// With `varyingTopic`, batches that publish every topic (key i * 7919 mod count: no two
    /// messages in a row share a topic, so each misses the route cache); else one batch of
    /// 1,000 messages on the same topic (each hits the cache).
    init(mix: Mix, subscriptionCount: Int, varyingTopic: Bool, policy: Policy = .open) {
        var configuration = BrokerConfiguration()
        configuration.policy = policy
        let driver = BrokerDriver(configuration: configuration)
        self.driver = driver
        let subscriberCount = min(subscriptionCount, 100)
        subscribers = (0..<subscriberCount).map { driver.connectClient("subscriber-\($0)") }
        for (index, subscriber) in subscribers.enumerated() {
            let keys = stride(from: index, to: subscriptionCount, by: subscriberCount)
            driver.subscribe(subscriber, to: keys.map { mix.form($0).filter($0) })
        }
        publisher = driver.connectClient("publisher")
        let keys = (0..<max(subscriptionCount, 1_000)).map { varyingTopic ? $0 * 7_919 % subscriptionCount : 42 }
        batches = stride(from: 0, to: keys.count, by: 1_000).map { start in
            PublishBatch(topics: keys[start..<start + 1_000].map(topic), payload: payload64)
        }
        // Warm up (output queues reach their working capacity) and check one delivery per message.
        let before = driver.delivered
        for batch in batches { driver.route(batch, from: publisher, drain: subscribers) }
        let delivered = driver.delivered - before
        precondition(delivered == UInt64(keys.count), "\(mix.name): \(delivered) deliveries for \(keys.count) messages")
    }

    /// Routes the next batch (cycling through them) and drains every subscriber.
    @inline(__always)
    func routeNextBatch() -> Int {
        defer { next = (next + 1) % batches.count }
        return driver.route(batches[next], from: publisher, drain: subscribers)
    }
}

let benchmarks: @Sendable () -> Void = {
    let configuration = Benchmark.Configuration(
        metrics: [.wallClock, .mallocCountTotal, .throughput],
        timeUnits: .nanoseconds,
        warmupIterations: 20,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: 2_000
    )

    func routing(_ mix: Mix, subscriptions: Int, varyingTopic: Bool, policy: Policy? = nil) {
        let what = varyingTopic ? "new topic each message (cache miss)" : "same topic (cache hit)"
        let withPolicy = policy == nil ? "" : ", 100-rule policy"
        Benchmark("\(subscriptions) subs, \(mix.name)\(withPolicy): \(what)", configuration: configuration) { benchmark, fixture in
            // One batch is 1,000 messages: the whole scaled iteration.
            blackHole(fixture.routeNextBatch())
        } setup: {
            MatchingFixture(mix: mix, subscriptionCount: subscriptions, varyingTopic: varyingTopic, policy: policy ?? .open)
        }
    }

    for mix in Mix.all {
        routing(mix, subscriptions: 10_000, varyingTopic: true)
        routing(mix, subscriptions: 10_000, varyingTopic: false)
    }
    // Reference: the same miss with a trie small enough to stay in cache.
    routing(Mix.all[0], subscriptions: 100, varyingTopic: true)
    // The policy is checked when a route is built: a hit costs nothing more, a miss pays
    // for the publisher's PUBLISH check and each subscriber's receive check.
    routing(Mix.all[0], subscriptions: 10_000, varyingTopic: true, policy: .hundredRules)
    routing(Mix.all[0], subscriptions: 10_000, varyingTopic: false, policy: .hundredRules)
    routing(Mix.all[0], subscriptions: 100, varyingTopic: true, policy: .hundredRules)

    // The filter alone, against a topic it matches.
    let matchedTopic = Array(topic(42).utf8)
    for form in FilterForm.allCases {
        let filter = try! TopicFilter(form.filter(42))
        Benchmark("TopicFilter.matches(topic:) \(filter)", configuration: configuration) { benchmark in
            matchedTopic.withUnsafeBytes { topic in
                precondition(filter.matches(topic: topic))
                for _ in benchmark.scaledIterations {
                    blackHole(filter.matches(topic: topic))
                }
            }
        }
    }
}
