import Herald

/// The outcome of one workload: what the report table and `--json` show.
struct BenchResult: Codable, Sendable {
    /// Delivery and rates, for W1–W3, W5, W6.
    struct Throughput: Codable, Sendable {
        var sent: UInt64
        /// Distinct data messages received, summed over subscribers.
        var delivered: UInt64
        var expectedPerSubscriber: UInt64
        /// Earliest first to latest last message over all subscribers.
        var windowSeconds: Double
        /// delivered ÷ window.
        var deliveredPerSecond: Double
        /// Payload megabytes (10^6) per second delivered.
        var megabytesPerSecond: Double
        var deliveredFractionMin: Double
        var deliveredFractions: [Double]
        /// Each subscriber's own rate (its messages ÷ its first-to-last time).
        var subscriberRates: [Double]
        /// sent ÷ (last flush done − first publish).
        var publisherPerSecond: Double
        var lost: UInt64
        /// Forward jumps in a publisher's sequence (each starts a run of lost messages).
        var gaps: UInt64
        var duplicates: UInt64
        var reordered: UInt64
        var malformed: UInt64
        var disconnects: Int
        /// One-way delay (send to receive) under this load, µs: the worst subscriber's
        /// percentile, from every 16th message.
        var delayP50Micros: Double
        var delayP99Micros: Double
        var delayMaxMicros: Double
    }

    /// W4 round trips, in microseconds.
    struct Latency: Codable, Sendable {
        var roundTrips: UInt64
        var warmup: UInt64
        var mismatched: UInt64
        var minMicros: Double
        var meanMicros: Double
        var p50Micros: Double
        var p90Micros: Double
        var p99Micros: Double
        var p999Micros: Double
        var maxMicros: Double
        var roundTripsPerSecond: Double
    }

    /// W6: what the slow-consumer policy promises and whether it held.
    struct SlowConsumer: Codable, Sendable {
        var policy: String
        var promise: String
        var kept: Bool
        var verdict: String
        var stalledFraction: Double
        var fastFraction: Double
        var fastPerSecond: Double
        var publisherPerSecond: Double
        /// Lost messages per subscriber, and the drops the broker announced to each.
        var lost: [UInt64]
        var dropNotices: [UInt64]
        var droppedAnnounced: [UInt64]
        var droppedBefore: [UInt64]
        var disconnects: [String?]
        var brokerRSSPeakKibibytes: Int?
    }

    /// W7: one user's round trips alone and while another user floods the broker.
    struct Fairness: Codable, Sendable {
        var pingUID: UInt32
        var floodUID: UInt32
        /// `shared` or `isolated` (``FairnessScheduling``).
        var scheduling: String
        var quietP50Micros: Double
        var quietP99Micros: Double
        var floodedP50Micros: Double
        var floodedP99Micros: Double
        /// Flooded ÷ alone.
        var p50Ratio: Double
        var p99Ratio: Double
        /// Messages per second the flooder published while the round trips were measured.
        var floodPerSecond: Double
        var floodSent: UInt64
    }

    /// L1: the library alone, and how it compares with the broker in the same run.
    struct Library: Codable, Sendable {
        var messages: UInt64
        /// Publishes per second until the flush after them returned, and of the calls alone.
        var publishPerSecond: Double
        var publishCallsPerSecond: Double
        /// Messages per second handed out by one subscription.
        var receivePerSecond: Double
        /// CPU nanoseconds per message spent by the library (the process less the loopback broker).
        var publishCPUNanosPerMessage: Double
        var receiveCPUNanosPerMessage: Double
        var loopbackSendCPUPercent: Double
        /// W1 of this run: delivered msg/s, the broker's CPU, and msg/s per broker
        /// CPU-second (what the broker would deliver with a core to itself; a lower bound,
        /// since a busier broker batches more).
        var brokerW1PerSecond: Double?
        var brokerW1CPUPercent: Double?
        var brokerPerCoreSecond: Double?
        /// Library rate ÷ W1 delivered rate.
        var publishRatioToW1: Double?
        var receiveRatioToW1: Double?
        /// Library rate ÷ the broker's rate per CPU-second.
        var publishRatioToBroker: Double?
        var receiveRatioToBroker: Double?
        /// Both directions at ≥ 50 % of the broker's rate (per CPU-second if known, else W1's).
        var meetsTarget: Bool?
    }

    /// Who used the CPU and memory over the measured window.
    struct Resources: Codable, Sendable {
        var brokerPID: UInt32?
        var brokerCPUPercent: Double?
        var brokerRSSBeforeKibibytes: Int?
        var brokerRSSPeakKibibytes: Int?
        /// All workers' CPU-seconds over the window (each worker includes its bus I/O thread).
        var clientCPUPercent: Double?
        var machineBusyPercent: Double?
        var machineStealPercent: Double?
        /// Machine busy less broker and clients: other jobs on the machine (a few % is noise).
        var otherCPUPercent: Double?
    }

    var workload: String
    var label: String
    var summary: String
    var publishers: Int
    var subscribers: Int
    var messagesPerPublisher: Int
    var payloadBytes: Int
    var slowConsumerPolicy: String?
    /// "ok", "check failed" (it ran; a delivery check failed) or "failed" (it did not complete).
    var status: String
    var problems: [String]
    var runSeconds: Double
    var throughput: Throughput?
    var latency: Latency?
    var slowConsumer: SlowConsumer?
    var fairness: Fairness?
    var library: Library?
    var resources: Resources

    var isOK: Bool { status == "ok" }

    /// A workload that could not be completed.
    static func failed(_ plan: BenchPlan, _ reason: String) -> BenchResult {
        var result = BenchResult(plan: plan)
        result.status = "failed"
        result.problems = [reason]
        return result
    }

    private init(plan: BenchPlan) {
        workload = plan.workload.rawValue
        label = plan.label
        summary = plan.workload.summary
        publishers = plan.workload.publishers
        subscribers = plan.subscribers
        messagesPerPublisher = plan.messages
        payloadBytes = plan.size
        slowConsumerPolicy = plan.workload == .l1 ? nil : "\(plan.policy)"
        status = "ok"
        problems = []
        runSeconds = 0
        resources = Resources()
    }

    /// Aggregates a run's reports. `freshBroker`: the broker was started for this workload,
    /// so its VmHWM is this workload's peak.
    init(plan: BenchPlan, record: BenchRecord, sampler: BrokerSampler, brokerPID: UInt32?, freshBroker: Bool) {
        self.init(plan: plan)
        runSeconds = secondsBetween(record.goAt, record.endAt)
        resources.brokerPID = brokerPID
        resources.brokerRSSBeforeKibibytes = sampler.brokerRSSKiB(at: record.goAt)
        let sampledPeak = sampler.brokerRSSPeakKibibytes(since: record.goAt)
        let lifetimePeak = freshBroker ? sampler.brokerHighWaterMarkKiB() : nil
        resources.brokerRSSPeakKibibytes = [sampledPeak, lifetimePeak].compactMap { $0 }.max()
        switch plan.workload {
        case .w4, .w8: aggregateLatency(plan, record, sampler)
        case .w7: aggregateFairness(plan, record, sampler)
        case .l1: aggregateLibrary(plan, record)
        default: aggregateThroughput(plan, record, sampler)
        }
        if !problems.isEmpty && status == "ok" { status = "check failed" }
    }

    private mutating func aggregateThroughput(_ plan: BenchPlan, _ record: BenchRecord, _ sampler: BrokerSampler) {
        let subscribers = record.subscribers
        let expected = UInt64(plan.workload.publishers) * UInt64(plan.messages)
        let receivers = subscribers.filter { $0.unique > 0 }
        let first = receivers.map(\.firstNanos).min() ?? 0
        let last = receivers.map(\.lastNanos).max() ?? 0
        let window = secondsBetween(first, last)
        let delivered = subscribers.reduce(0) { $0 + $1.unique }
        let fractions = subscribers.map { expected > 0 ? Double($0.unique) / Double(expected) : 0 }
        let rates = subscribers.map { $0.unique > 0 ? Double($0.unique) / max(1e-9, secondsBetween($0.firstNanos, $0.lastNanos)) : 0 }
        let sent = record.publishers.reduce(0) { $0 + $1.sent }
        let publishStart = record.publishers.map(\.startNanos).min() ?? 0
        let publishEnd = record.publishers.map(\.endNanos).max() ?? 0
        let publisherRate = Double(sent) / max(1e-9, secondsBetween(publishStart, publishEnd))
        let rate = window > 0 ? Double(delivered) / window : 0
        throughput = Throughput(
            sent: sent, delivered: delivered, expectedPerSubscriber: expected, windowSeconds: window,
            deliveredPerSecond: rate, megabytesPerSecond: rate * Double(plan.size) / 1e6,
            deliveredFractionMin: fractions.min() ?? 0, deliveredFractions: fractions, subscriberRates: rates,
            publisherPerSecond: publisherRate, lost: subscribers.reduce(0) { $0 + $1.lost },
            gaps: subscribers.reduce(0) { $0 + $1.gapEvents },
            duplicates: subscribers.reduce(0) { $0 + $1.duplicates }, reordered: subscribers.reduce(0) { $0 + $1.reordered },
            malformed: subscribers.reduce(0) { $0 + $1.malformed },
            disconnects: subscribers.filter { $0.stop == .disconnected }.count,
            delayP50Micros: subscribers.map(\.delayP50Micros).max() ?? 0,
            delayP99Micros: subscribers.map(\.delayP99Micros).max() ?? 0,
            delayMaxMicros: subscribers.map(\.delayMaxMicros).max() ?? 0)

        let clientCPU = subscribers.reduce(0) { $0 + $1.cpuSeconds } + record.publishers.reduce(0) { $0 + $1.cpuSeconds }
        fillCPU(sampler, first, last, clientCPUSeconds: clientCPU)

        for (index, publisher) in record.publishers.enumerated() {
            if let error = publisher.error { problems.append("publisher \(index): \(error)") }
        }
        for (index, subscriber) in subscribers.enumerated() {
            let name = "subscriber \(index)"
            if subscriber.duplicates > 0 { problems.append("\(name): \(subscriber.duplicates) duplicates") }
            if subscriber.reordered > 0 { problems.append("\(name): \(subscriber.reordered) out of order") }
            if subscriber.malformed > 0 { problems.append("\(name): \(subscriber.malformed) malformed messages") }
            if plan.isLossless && subscriber.lost > 0 {
                problems.append("\(name): \(subscriber.lost) messages lost (\(subscriber.gapEvents) gaps) under backpressure")
            }
            if plan.isLossless && subscriber.stop == .disconnected {
                problems.append("\(name): disconnected: \(subscriber.disconnectReason ?? "connection ended")")
            }
        }
        if plan.workload == .w6 { judgeSlowConsumer(plan, record, publisherRate: publisherRate) }
    }

    /// W6: states what the policy promises and checks it against what happened.
    private mutating func judgeSlowConsumer(_ plan: BenchPlan, _ record: BenchRecord, publisherRate: Double) {
        let subscribers = record.subscribers
        guard subscribers.count == 2, let throughput else { return }
        let promise: String
        var broken: [String] = []
        switch plan.policy {
        case .drop:
            promise =
                "publishers are never slowed; a subscriber more than its output limit behind loses messages, "
                + "and every loss is announced (DROPPED -> BusEvent.messagesDropped, Message.droppedBefore)"
            for (index, subscriber) in subscribers.enumerated() {
                if subscriber.lost != subscriber.droppedAnnounced {
                    broken.append(
                        "subscriber \(index) lost \(subscriber.lost) but \(subscriber.droppedAnnounced) were announced")
                }
                if subscriber.stop == .disconnected { broken.append("subscriber \(index) was disconnected") }
            }
        case .disconnect:
            promise =
                "a subscriber more than its output limit behind is disconnected with a slow_consumer error; "
                + "what it received before is complete and in order"
            for (index, subscriber) in subscribers.enumerated() {
                if subscriber.lost > 0 && !subscriber.slowConsumerDisconnect {
                    broken.append("subscriber \(index) lost \(subscriber.lost) without a slow-consumer disconnect")
                }
                if subscriber.gapEvents > 0 { broken.append("subscriber \(index) saw \(subscriber.gapEvents) gaps before the end") }
            }
        case .backpressure:
            promise = "nothing is lost: the broker slows the publisher to the slowest subscriber's pace"
            for (index, subscriber) in subscribers.enumerated() where subscriber.lost > 0 || subscriber.stop != .complete {
                broken.append("subscriber \(index) received \(subscriber.unique) of \(throughput.expectedPerSubscriber)")
            }
        }
        for (index, subscriber) in subscribers.enumerated() where subscriber.duplicates + subscriber.reordered > 0 {
            broken.append("subscriber \(index) saw duplicates or reordering")
        }
        let verdict: String
        if broken.isEmpty {
            let stalled = subscribers[0]
            switch plan.policy {
            case .drop where stalled.lost > 0:
                verdict = "kept: every lost message was announced (\(BenchFormat.grouped(Double(stalled.droppedAnnounced))) to the stalled subscriber in \(stalled.dropNotices) notices)"
            case .disconnect where stalled.slowConsumerDisconnect:
                verdict = "kept: the stalled subscriber was disconnected after \(BenchFormat.grouped(Double(stalled.unique))) messages, with no gap before"
            case .backpressure:
                verdict = "kept: both subscribers received everything; the publisher was held to \(BenchFormat.short(publisherRate)) msg/s"
            default:
                verdict = "kept, but not exercised: the stalled subscriber never fell a full output limit behind (raise --messages)"
            }
        } else {
            verdict = "BROKEN: " + broken.joined(separator: "; ")
            problems.append("slow-consumer promise (\(plan.policy)) broken: " + broken.joined(separator: "; "))
        }
        slowConsumer = SlowConsumer(
            policy: "\(plan.policy)", promise: promise, kept: broken.isEmpty, verdict: verdict,
            stalledFraction: throughput.deliveredFractions[0], fastFraction: throughput.deliveredFractions[1],
            fastPerSecond: throughput.subscriberRates[1], publisherPerSecond: publisherRate, lost: subscribers.map(\.lost),
            dropNotices: subscribers.map(\.dropNotices), droppedAnnounced: subscribers.map(\.droppedAnnounced),
            droppedBefore: subscribers.map(\.droppedBefore), disconnects: subscribers.map(\.disconnectReason),
            brokerRSSPeakKibibytes: resources.brokerRSSPeakKibibytes)
    }

    private mutating func aggregateLatency(_ plan: BenchPlan, _ record: BenchRecord, _ sampler: BrokerSampler) {
        guard let pinger = record.pinger else {
            problems.append("the pinger reported nothing")
            return
        }
        let window = secondsBetween(pinger.startNanos, pinger.endNanos)
        var measured = pinger.latency
        measured.roundTripsPerSecond = window > 0 ? Double(measured.roundTrips) / window : 0
        latency = measured
        // The ponger's CPU covers the warm-up too; it is small beside the window.
        fillCPU(sampler, pinger.startNanos, pinger.endNanos, clientCPUSeconds: pinger.cpuSeconds + (record.ponger?.cpuSeconds ?? 0))
        if measured.mismatched > 0 { problems.append("\(measured.mismatched) pongs did not echo the ping just sent") }
        if measured.roundTrips < UInt64(plan.messages) { problems.append("only \(measured.roundTrips) of \(plan.messages) round trips") }
    }

    private mutating func aggregateFairness(_ plan: BenchPlan, _ record: BenchRecord, _ sampler: BrokerSampler) {
        aggregateLatency(plan, record, sampler)
        guard let quiet = record.quietPinger?.latency, let flooded = latency, let flooder = record.flooder else {
            problems.append("W7 is missing the round trips alone or the flooder's report")
            return
        }
        if let error = flooder.error { problems.append("flooder: \(error)") }
        fairness = Fairness(
            pingUID: record.pingUID ?? 0, floodUID: record.floodUID ?? 0, scheduling: plan.fairnessScheduling.rawValue,
            quietP50Micros: quiet.p50Micros, quietP99Micros: quiet.p99Micros,
            floodedP50Micros: flooded.p50Micros, floodedP99Micros: flooded.p99Micros,
            p50Ratio: flooded.p50Micros / max(1e-9, quiet.p50Micros), p99Ratio: flooded.p99Micros / max(1e-9, quiet.p99Micros),
            floodPerSecond: Double(flooder.sent) / max(1e-9, secondsBetween(flooder.startNanos, flooder.endNanos)),
            floodSent: flooder.sent)
    }

    private mutating func aggregateLibrary(_ plan: BenchPlan, _ record: BenchRecord) {
        guard let report = record.library else {
            problems.append("the library worker reported nothing")
            return
        }
        let messages = Double(report.messages)
        library = Library(
            messages: report.messages, publishPerSecond: messages / max(1e-9, report.publishTotalSeconds),
            publishCallsPerSecond: messages / max(1e-9, report.publishCallSeconds),
            receivePerSecond: Double(report.receiveUnique) / max(1e-9, report.receiveSeconds),
            publishCPUNanosPerMessage: (report.publishCPUSeconds - report.publishLoopbackCPUSeconds) * 1e9 / messages,
            receiveCPUNanosPerMessage: (report.receiveCPUSeconds - report.receiveLoopbackCPUSeconds) * 1e9 / messages,
            loopbackSendCPUPercent: 100 * report.receiveLoopbackCPUSeconds / max(1e-9, report.receiveSeconds))
        if report.publishArrived != report.messages || report.publishOutOfOrder > 0 {
            problems.append(
                "library publish: the loopback broker read \(report.publishArrived) of \(report.messages), \(report.publishOutOfOrder) out of order")
        }
        if report.receiveLost + report.receiveDuplicates + report.receiveReordered > 0 {
            problems.append(
                "library receive: \(report.receiveLost) lost, \(report.receiveDuplicates) duplicates, \(report.receiveReordered) reordered")
        }
    }

    /// Compares L1 with this run's W1 (the issue's target: the library at ≥ 50 % of the
    /// broker's rate). W1 runs with Swift clients, so when they are the limit its delivered
    /// rate is the library's own; the broker's rate per CPU-second is the fairer yardstick.
    mutating func compareLibrary(withW1 w1: BenchResult?) {
        guard var library, let w1, w1.isOK, let throughput = w1.throughput, throughput.deliveredPerSecond > 0 else { return }
        let delivered = throughput.deliveredPerSecond
        library.brokerW1PerSecond = delivered
        library.publishRatioToW1 = library.publishPerSecond / delivered
        library.receiveRatioToW1 = library.receivePerSecond / delivered
        var yardstick = delivered
        if let cpu = w1.resources.brokerCPUPercent, cpu > 0 {
            let perCore = delivered / (min(cpu, 100) / 100)
            library.brokerW1CPUPercent = cpu
            library.brokerPerCoreSecond = perCore
            library.publishRatioToBroker = library.publishPerSecond / perCore
            library.receiveRatioToBroker = library.receivePerSecond / perCore
            yardstick = perCore
        }
        library.meetsTarget = library.publishPerSecond >= 0.5 * yardstick && library.receivePerSecond >= 0.5 * yardstick
        self.library = library
    }

    private mutating func fillCPU(_ sampler: BrokerSampler, _ start: UInt64, _ end: UInt64, clientCPUSeconds: Double) {
        let window = secondsBetween(start, end)
        guard window > 0 else { return }
        resources.brokerCPUPercent = sampler.brokerCPUPercent(start, end)
        resources.clientCPUPercent = 100 * clientCPUSeconds / window
        if let machine = sampler.machinePercent(start, end) {
            resources.machineBusyPercent = machine.busy
            resources.machineStealPercent = machine.steal
            resources.otherCPUPercent = machine.busy - (resources.brokerCPUPercent ?? 0) - 100 * clientCPUSeconds / window
        }
    }
}
