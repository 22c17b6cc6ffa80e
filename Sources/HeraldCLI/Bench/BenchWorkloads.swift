import Herald

/// The workloads of `herald bench`: those of the peer harness in Benchmarks/peers (W1–W6,
/// W8), W7 (fairness between users), W9 (large payloads as sealed memfds), and L1, the
/// client library measured without a broker.
enum BenchWorkload: String, CaseIterable, Codable, Sendable {
    case w1 = "W1", w2 = "W2", w3 = "W3", w4 = "W4", w5 = "W5", w6 = "W6", w7 = "W7", w8 = "W8", w9 = "W9", l1 = "L1"

    /// What it measures, in a few words.
    var summary: String {
        switch self {
        case .w1: "1 publisher -> 1 subscriber"
        case .w2: "1 publisher -> 8 subscribers"
        case .w3: "4 publishers -> 1 subscriber"
        case .w4: "round-trip latency, one in flight"
        case .w5: "1 -> 1, 4 KiB payloads"
        case .w6: "slow consumer: 1 -> 2, subscriber 0 stalls 2 s"
        case .w7: "fairness: uid B's round trips, alone and while uid A floods"
        case .w8: "request/reply latency, one in flight"
        case .w9: "large payloads as sealed memfds, 1 KiB to 64 MiB, 1 -> 1 and 1 -> 8"
        case .l1: "client library alone, one task each way"
        }
    }

    /// Publisher processes (W4: the pinger; L1: none, it is one process).
    var publishers: Int {
        switch self {
        case .w3: 4
        case .w4, .w7, .w8, .l1: 0
        default: 1
        }
    }

    /// Subscriber processes.
    var subscribers: Int {
        switch self {
        case .w2: 8
        case .w6: 2
        case .w4, .w7, .w8, .l1: 0
        default: 1
        }
    }

    /// Messages per publisher (W4: measured round trips), chosen so each workload runs for
    /// about 2–4 s on the 2-core machine the peer numbers come from.
    var defaultMessages: Int {
        switch self {
        case .w1: 8_000_000
        case .w2: 1_000_000
        case .w3: 1_500_000
        case .w4: 25_000
        case .w5: 600_000
        case .w6: 6_000_000
        case .w7: 10_000
        case .w8: 25_000
        case .w9: 1000
        case .l1: 8_000_000
        }
    }

    /// The payload size this workload always uses, whatever `--size` says.
    var fixedPayloadSize: Int? { self == .w5 ? 4096 : nil }

    /// W9's runs: each payload size, 1 -> 1 and 1 -> 8, with messages per run chosen for
    /// about 1-2 s each on a 2-core machine (the memfd per message dominates small sizes,
    /// writing the payload into it large ones).
    static let w9Runs: [(size: Int, messages: Int)] = [(1 << 10, 50_000), (64 << 10, 20_000), (1 << 20, 3000), (64 << 20, 60)]
    static let w9FanOuts = [1, 8]
}

/// One workload as it will run.
struct BenchPlan: Sendable {
    var workload: BenchWorkload
    /// Messages per publisher (W4: measured round trips; L1: messages each way).
    var messages: Int
    var size: Int
    /// The slow-consumer policy the subscribers ask for.
    var policy: SlowConsumerPolicy
    /// W6: how long subscriber 0 stops reading after its first message.
    var stallMilliseconds: Int
    /// A subscriber stops when nothing arrived for this long after the publishers were done.
    var idleMilliseconds = 2000
    /// W4: unmeasured round trips first.
    var warmup = 1000
    /// W7: how its processes are scheduled.
    var fairnessScheduling = FairnessScheduling.shared
    /// Subscribers, where the workload's own number does not apply (W9's 1 -> 8 runs).
    var fanOut: Int?

    /// Subscriber processes.
    var subscribers: Int { fanOut ?? workload.subscribers }
    /// W9: every payload is published as a sealed memfd (``SealedPayload``), written in full
    /// by the publisher, and the subscribers read a byte in each of its 4 KiB pages.
    var sealed: Bool { workload == .w9 }

    /// The policy a process of this workload starts with; nil inherits this process's.
    /// Only W7 with isolated scheduling sets one: real-time for the broker and the round-trip
    /// user's processes, the default for the flood.
    func scheduling(forBroker: Bool = false, role: BenchWorkerCommand.Role? = nil) -> ChildScheduling? {
        guard workload == .w7, fairnessScheduling == .isolated else { return nil }
        if forBroker { return .realTime }
        return role == .pinger || role == .ponger ? .realTime : .standard
    }

    /// Whether every message must arrive: the subscribers asked for backpressure.
    var isLossless: Bool { policy == .backpressure }

    /// A short label for tables: workload, shape and payload size.
    var label: String {
        switch workload {
        case .w1: "W1 1->1 \(BenchFormat.bytes(size))"
        case .w2: "W2 1->8 \(BenchFormat.bytes(size))"
        case .w3: "W3 4->1 \(BenchFormat.bytes(size))"
        case .w4: "W4 ping-pong \(BenchFormat.bytes(size))"
        case .w5: "W5 1->1 \(BenchFormat.bytes(size))"
        case .w6: "W6 slow consumer (\(policy))"
        case .w7: "W7 fairness \(BenchFormat.bytes(size))"
        case .w8: "W8 request/reply \(BenchFormat.bytes(size))"
        case .w9: "W9 1->\(subscribers) \(BenchFormat.bytes(size)) memfd"
        case .l1: "L1 library \(BenchFormat.bytes(size))"
        }
    }
}
