#if canImport(Glibc)
import Glibc
#endif

/// What one run of a workload produced, before aggregation.
struct BenchRecord {
    var publishers: [PublisherReport] = []
    var subscribers: [SubscriberReport] = []
    var pinger: PingerReport?
    var ponger: PongerReport?
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
            return try runLatency()
        case .l1:
            return try runLibrary()
        default:
            return try runThroughput()
        }
    }

    // MARK: - Workloads

    private func runThroughput() throws(BenchError) -> BenchRecord {
        for index in 0..<plan.workload.subscribers { try spawn(.subscriber, index) }
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

    private func runLatency() throws(BenchError) -> BenchRecord {
        try spawn(.ponger, 0)
        try spawn(.pinger, 0)
        try wait("the pinger and ponger to subscribe", seconds: 30) { self.workers.allSatisfy { $0.ready != nil } }
        var record = BenchRecord()
        sampler.sample()
        record.goAt = monotonicNanos()
        for worker in workers where worker.role == .pinger { worker.send(.go) }
        try wait("the pinger", seconds: timeout) { self.all(.pinger) { $0.result != nil } }
        for worker in workers where worker.role == .ponger { worker.send(.done) }
        try wait("the ponger", seconds: 10) { self.all(.ponger) { $0.result != nil } }
        sampler.sample()
        record.endAt = monotonicNanos()
        record.pinger = workers.compactMap { $0.result?.pinger }.first
        record.ponger = workers.compactMap { $0.result?.ponger }.first
        return record
    }

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

    private func spawn(_ role: BenchWorkerCommand.Role, _ index: Int) throws(BenchError) {
        let arguments = [
            "bench-worker", "--role", role.rawValue, "--index", "\(index)", "--address", address,
            "--messages", "\(plan.messages)", "--publishers", "\(max(1, plan.workload.publishers))",
            "--size", "\(plan.size)", "--slow-consumer", "\(plan.policy)",
            "--stall-ms", "\(role == .subscriber && index == 0 ? plan.stallMilliseconds : 0)",
            "--idle-ms", "\(plan.idleMilliseconds)", "--warmup", "\(plan.warmup)",
        ]
        let process = try ChildProcess.spawn(executable, arguments, pipes: true)
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
