import Herald
#if canImport(Glibc)
import Glibc
#endif

/// What one run of a workload produced, before aggregation.
struct BenchRecord {
    var publishers: [PublisherReport] = []
    var subscribers: [SubscriberReport] = []
    var pinger: PingerReport?
    var ponger: PongerReport?
    /// W7: the round trips measured alone, before the flood (`pinger` holds those under it),
    /// the flooder's report, and the uids of the flooding and of the measured side.
    var quietPinger: PingerReport?
    var flooder: PublisherReport?
    var floodUID: UInt32?
    var pingUID: UInt32?
    var library: LibraryReport?
    /// When the parent said `go`, and when the last result arrived (CLOCK_MONOTONIC ns).
    var goAt: UInt64 = 0
    var endAt: UInt64 = 0
}

/// Runs one workload: starts the worker processes, holds the start barrier, collects the
/// results while sampling the broker, and always ends every worker it started.
final class WorkloadRunner {
    let plan: BenchPlan
    let address: String
    let executable: String
    let sampler: BrokerSampler
    let progress: ProgressLine
    /// Seconds allowed after `go` before the workload is abandoned.
    let timeout: Double
    private var workers: [BenchWorkerProcess] = []
    private var startedAt = monotonicNanos()

    init(plan: BenchPlan, address: String, executable: String, sampler: BrokerSampler, progress: ProgressLine, timeout: Double) {
        self.plan = plan
        self.address = address
        self.executable = executable
        self.sampler = sampler
        self.progress = progress
        self.timeout = timeout
    }

    /// Runs the workload; throws why it could not be completed.
    func run() throws(BenchError) -> BenchRecord {
        startedAt = monotonicNanos()
        defer { endWorkers() }
        sampler.sample()
        switch plan.workload {
        case .w4:
            return try runLatency(asking: .pinger, answering: .ponger)
        case .w8:
            return try runLatency(asking: .requester, answering: .responder)
        case .w7:
            return try runFairness()
        case .l1:
            return try runLibrary()
        default:
            return try runThroughput()
        }
    }

    // MARK: - Workloads

    private func runThroughput() throws(BenchError) -> BenchRecord {
        for index in 0..<plan.subscribers { try spawn(.subscriber, index) }
        for index in 0..<plan.workload.publishers { try spawn(.publisher, index) }
        // The barrier: every subscription is live (subscribe returned after the broker's OK)
        // and every publisher connected, before anyone publishes.
        try wait("the workers to connect and subscribe", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        var record = BenchRecord()
        sampler.sample()
        record.goAt = monotonicNanos()
        for worker in workers where worker.role == .publisher { worker.send(.go) }
        try wait("the publishers", seconds: timeout) { self.all(.publisher) { $0.result != nil } }
        for worker in workers where worker.role == .subscriber { worker.send(.done) }
        try wait("the subscribers", seconds: timeout) { self.all(.subscriber) { $0.result != nil } }
        sampler.sample()
        record.endAt = monotonicNanos()
        record.publishers = workers.compactMap { $0.result?.publisher }
        record.subscribers = workers.compactMap { $0.result?.subscriber }
        return record
    }

    /// W4 (pinger and ponger) and W8 (requester and responder): one round trip in flight.
    private func runLatency(asking: BenchWorkerCommand.Role, answering: BenchWorkerCommand.Role) throws(BenchError) -> BenchRecord {
        try spawn(answering, 0)
        try spawn(asking, 0)
        try wait("the \(asking) and \(answering) to subscribe", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        var record = BenchRecord()
        sampler.sample()
        record.goAt = monotonicNanos()
        for worker in workers where worker.role == asking { worker.send(.go) }
        try wait("the \(asking)", seconds: timeout) { self.all(asking) { $0.result != nil } }
        for worker in workers where worker.role == answering { worker.send(.done) }
        try wait("the \(answering)", seconds: 10) { self.all(answering) { $0.result != nil } }
        sampler.sample()
        record.endAt = monotonicNanos()
        record.pinger = workers.compactMap { $0.result?.pinger }.first
        record.ponger = workers.compactMap { $0.result?.ponger }.first
        return record
    }

    /// W7: uid B's round trips (W4's pinger and ponger) alone, then while uid A floods the
    /// broker (a flooder publishing as fast as it can to a `drop` subscriber). As root, uid A
    /// is `nobody` (its workers run under setpriv; the spawned broker admits it); otherwise
    /// both sides share this process's uid and W7 measures fairness between connections.
    private func runFairness() throws(BenchError) -> BenchRecord {
        var record = BenchRecord()
        let flooderUser = getuid() == 0 ? WorkloadRunner.floodUID : nil
        record.floodUID = flooderUser ?? getuid()
        record.pingUID = getuid()

        try spawn(.ponger, 0)
        try spawn(.pinger, 0)
        try wait("the pinger and ponger to subscribe", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        sampler.sample()
        record.goAt = monotonicNanos()
        for worker in workers where worker.role == .pinger { worker.send(.go) }
        try wait("the pinger (alone)", seconds: timeout) { self.all(.pinger) { $0.result != nil } }
        record.quietPinger = workers.compactMap { $0.result?.pinger }.first
        endWorkers()

        try spawn(.subscriber, 0, asUser: flooderUser)
        try spawn(.flooder, 0, asUser: flooderUser)
        try spawn(.ponger, 0)
        try spawn(.pinger, 0)
        try wait("the flood and the pinger to connect", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        for worker in workers where worker.role == .flooder { worker.send(.go) }
        // The flood is under way (its progress counter moved) before the first ping.
        try wait("the flood to start", seconds: 30) { self.workers.contains { $0.role == .flooder && $0.progress > 0 } }
        for worker in workers where worker.role == .pinger { worker.send(.go) }
        try wait("the pinger (under the flood)", seconds: timeout) { self.all(.pinger) { $0.result != nil } }
        for worker in workers where worker.role == .flooder { worker.send(.done) }
        try wait("the flooder", seconds: 30) { self.all(.flooder) { $0.result != nil } }
        for worker in workers where worker.role == .subscriber || worker.role == .ponger { worker.send(.done) }
        try wait("the flood subscriber and the ponger", seconds: 30) {
            self.all(.subscriber) { $0.result != nil } && self.all(.ponger) { $0.result != nil }
        }
        sampler.sample()
        record.endAt = monotonicNanos()
        record.pinger = workers.compactMap { $0.result?.pinger }.first
        record.ponger = workers.compactMap { $0.result?.ponger }.first
        record.flooder = workers.compactMap { $0.result?.publisher }.first
        return record
    }

    /// The uid W7's flood runs as when herald bench runs as root: `nobody`.
    static let floodUID: UInt32 = 65534

    private func runLibrary() throws(BenchError) -> BenchRecord {
        try spawn(.library, 0)
        try wait("the library worker to start", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        var record = BenchRecord()
        record.goAt = monotonicNanos()
        workers[0].send(.go)
        try wait("the library worker", seconds: timeout) { self.workers[0].result != nil }
        record.endAt = monotonicNanos()
        record.library = workers[0].result?.library
        return record
    }

    // MARK: - Workers

    /// Starts a worker; with `asUser`, as that uid (through setpriv, from a copy of this
    /// executable that the user can run).
    private func spawn(_ role: BenchWorkerCommand.Role, _ index: Int, asUser user: UInt32? = nil) throws(BenchError) {
        // W7's flood goes to a subscriber that drops what it cannot take: the flood must not
        // be slowed by its own subscriber, only by the broker's fairness.
        let policy = plan.workload == .w7 && role == .subscriber ? SlowConsumerPolicy.drop : plan.policy
        // W7's flood runs until it is told to stop: its subscriber must not stop at a count.
        let messages = plan.workload == .w7 && (role == .flooder || role == .subscriber) ? 1 << 40 : plan.messages
        let arguments = [
            "bench-worker", "--role", role.rawValue, "--index", "\(index)", "--address", address,
            "--messages", "\(messages)", "--publishers", "\(max(1, plan.workload.publishers))",
            "--size", "\(plan.size)", "--slow-consumer", "\(policy)",
            "--stall-ms", "\(role == .subscriber && index == 0 ? plan.stallMilliseconds : 0)",
            "--idle-ms", "\(plan.workload == .w7 ? 100 : plan.idleMilliseconds)", "--warmup", "\(plan.warmup)",
        ] + (plan.sealed ? ["--sealed"] : [])
        let process: ChildProcess
        let scheduling = plan.scheduling(role: role)
        if let user {
            let copy = try ExecutableCopy.shared(of: executable)
            process = try ChildProcess.spawn(
                "/usr/bin/setpriv", ["--reuid=\(user)", "--regid=\(user)", "--clear-groups", copy] + arguments, pipes: true, scheduling: scheduling)
        } else {
            process = try ChildProcess.spawn(executable, arguments, pipes: true, scheduling: scheduling)
        }
        workers.append(BenchWorkerProcess(role: role, index: index, process: process))
    }

    private func all(_ role: BenchWorkerCommand.Role, _ condition: (BenchWorkerProcess) -> Bool) -> Bool {
        workers.filter { $0.role == role }.allSatisfy(condition)
    }

    /// Pumps worker output (and samples the broker) until `condition` holds; throws if a
    /// worker fails or `seconds` pass.
    private func wait(_ what: String, seconds: Double, until condition: () -> Bool) throws(BenchError) {
        let deadline = monotonicNanos() + UInt64(seconds * 1e9)
        while !condition() {
            if let failed = workers.first(where: { $0.failure != nil }) {
                throw BenchError("\(failed.name): \(failed.failure!)")
            }
            if monotonicNanos() > deadline { throw BenchError("timed out after \(Int(seconds)) s waiting for \(what)") }
            pump(milliseconds: 20)
        }
    }

    /// Waits up to `milliseconds` for worker output, handles it, samples the broker when a
    /// sample is due and redraws the progress line.
    private func pump(milliseconds: Int32) {
        let active = workers.filter { !$0.ended }
        var descriptors = active.map { pollfd(fd: $0.process.output, events: Int16(POLLIN), revents: 0) }
        if descriptors.isEmpty {
            usleep(UInt32(milliseconds) * 1000)
        } else if poll(&descriptors, nfds_t(descriptors.count), milliseconds) > 0 {
            for (worker, descriptor) in zip(active, descriptors) where descriptor.revents != 0 { worker.receive() }
        }
        sampler.sampleIfDue()
        progress.update(progressText())
    }

    private func progressText() -> String {
        let elapsed = BenchFormat.fixed(secondsBetween(startedAt, monotonicNanos()), 1) + " s"
        func total(_ role: BenchWorkerCommand.Role) -> Double {
            Double(workers.filter { $0.role == role }.reduce(0) { $0 + $1.progress })
        }
        let counts: String
        switch plan.workload {
        case .w4: counts = "round trips " + BenchFormat.short(total(.pinger))
        case .w8: counts = "requests " + BenchFormat.short(total(.requester))
        case .l1: counts = "messages " + BenchFormat.short(total(.library))
        default: counts = "sent " + BenchFormat.short(total(.publisher)) + "  received " + BenchFormat.short(total(.subscriber))
        }
        return "\(plan.label)  \(elapsed)  \(counts)"
    }

    /// Tells every worker to quit, then reaps them (killing any that do not exit within 2 s).
    private func endWorkers() {
        for worker in workers {
            worker.send(.quit)
            worker.process.closeInput()
        }
        for worker in workers { worker.process.finish(within: .seconds(2)) }
        workers.removeAll()
    }
}
