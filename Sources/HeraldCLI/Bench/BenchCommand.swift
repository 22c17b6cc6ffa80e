import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald bench`: throughput and latency of a broker, measured like `nats bench` and like
/// the peer-broker harness (shared/peers), so the numbers compare.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure a broker's throughput and latency (and the client library's own speed).",
        discussion: """
            Workloads (64-byte payloads unless noted; N = --messages per publisher):
              W1  1 publisher -> 1 subscriber
              W2  1 publisher -> 8 subscribers
              W3  4 publishers -> 1 subscriber
              W4  round-trip latency, one in flight (bench/ping -> ponger -> bench/pong)
              W5  1 -> 1 with 4 KiB payloads (also MB/s)
              W6  slow consumer: 1 -> 2, subscriber 0 stalls 2 s; --slow-consumer policy
              W7  fairness: W4's round trips alone, then while another user floods the broker
                  (as root, the flood runs as nobody and --spawn-broker admits it)
              W8  request/reply latency, one in flight (Bus.request -> responder -> answer)
              W9  large payloads as sealed memfds: 1 KiB, 64 KiB, 1 MiB and 64 MiB, each
                  1 -> 1 and 1 -> 8 (GB/s, compared with W5's inline 4 KiB in the same run)
              L1  the client library alone, against a loopback broker

            W4 and W8 do 1000 warm-up round trips, then N measured ones (HdrHistogram \
            percentiles): W8 is W4 with a request answered by one responder instead of a \
            message echoed on a second topic. \
            W9's publisher writes every payload in full into a fresh memfd (SealedPayload), seals \
            and publishes it, flushing every few messages (at most about 256 MiB in flight); its \
            subscribers check the seals, map the memfd and read one byte in each 4 KiB page. \
            W6 reports what the policy promises and whether it was kept. W7 reports the round \
            trips' p50/p99 both ways and their ratio. L1 measures how fast one \
            task publishes into the library and one task receives from it, against a stand-in \
            broker that costs next to nothing, and compares both with W1 of the same run.

            Every client is a separate process (this program re-run as a hidden worker), each using \
            the Herald library from one task, as in the peer harness: in one process the clients \
            would share one scheduler and one allocator, and the numbers would measure that \
            process's scheduling rather than the broker. Start barrier: every subscriber has \
            subscribed (subscribe returns after the broker's OK, so the subscription is live) and \
            every publisher has connected before any publisher starts. Each message carries the \
            publisher's index, a sequence number and its send time; subscribers check every \
            publisher's sequence for gaps, duplicates and reordering. Throughput = all deliveries \
            / (latest last - earliest first receive time over the subscribers). A subscriber stops \
            when it has every message, 2 s after the publishers finished with nothing arriving, \
            or when the broker disconnects it.

            W1-W5 subscribers ask for the backpressure policy, so those workloads are lossless and \
            any lost, duplicated or reordered message is an error. Broker CPU and RSS are sampled \
            from /proc every 20 ms (the broker's pid comes from WELCOME; this needs the broker in \
            the same pid namespace); client CPU comes from getrusage in each worker.

            Exit status: 0 all workloads ran and every check passed; 1 a workload failed or a \
            delivery check failed (loss, duplicates or reordering in a lossless workload, a broken \
            slow-consumer promise); 2 no broker (unreachable, or heraldd could not be started).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(help: ArgumentHelp("Comma-separated workloads: W1,W2,W3,W4,W5,W6,W7,W8,W9,L1, or all.", valueName: "list"))
    var workloads = "all"

    @Option(help: ArgumentHelp(
        "Messages per publisher (W4, W8: measured round trips; L1: messages each way) for every workload run. Default: per workload, about 2-4 s each.",
        valueName: "N"))
    var messages: Int?

    @Option(help: ArgumentHelp("Payload bytes (at least 24) for all workloads but W5, which uses 4096.", valueName: "bytes"))
    var size = 64

    @Option(
        name: .customLong("slow-consumer"),
        help: ArgumentHelp("W6's policy: drop, disconnect or backpressure.", valueName: "policy"))
    var slowConsumer: SubCommand.Policy = .drop

    @Flag(
        name: .customLong("spawn-broker"),
        help: ArgumentHelp(
            "Start a private heraldd (next to this binary, else on $PATH) on a fresh abstract address for each workload, and stop it after.",
            discussion: "A fresh broker per workload makes each peak RSS that workload's own and carries no buffers from one workload into the next."))
    var spawnBroker = false

    @Option(
        name: .customLong("w7-scheduling"),
        help: ArgumentHelp(
            "W7's scheduling: shared or isolated.",
            discussion: """
                shared (default): every process at the default policy, as on a machine without per-user CPU accounting; \
                where the flood's processes outnumber the cores they take CPU time from the round-trip user's processes. \
                isolated: the broker and the round-trip user's processes run SCHED_FIFO and the flood at the default \
                policy, which leaves only the broker's own share of the delay. Needs root and --spawn-broker.
                """,
            valueName: "mode"))
    var w7Scheduling: FairnessScheduling = .shared

    @Flag(help: "Print one JSON document (machine facts and a results array) instead of tables.")
    var json = false

    @Option(help: ArgumentHelp("Give up on a workload that has not finished this many seconds after it started.", valueName: "seconds"))
    var timeout: Double = 120

    func validate() throws {
        _ = try selectedWorkloads()
        if let messages, messages < 1 { throw ValidationError("--messages must be at least 1") }
        guard size >= BenchHeader.size else { throw ValidationError("--size must be at least \(BenchHeader.size) (the bench header)") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if w7Scheduling == .isolated && !spawnBroker {
            throw ValidationError("--w7-scheduling isolated starts the broker itself: add --spawn-broker")
        }
        if spawnBroker && connection.address != nil {
            throw ValidationError("--spawn-broker picks a private address; leave out --address")
        }
    }

    private func selectedWorkloads() throws -> [BenchWorkload] {
        if workloads.lowercased() == "all" { return BenchWorkload.allCases }
        var selected: [BenchWorkload] = []
        for name in workloads.split(separator: ",") {
            let trimmed = name.trimmingPrefix(" ").uppercased()
            guard let workload = BenchWorkload(rawValue: trimmed) else {
                throw ValidationError("unknown workload '\(name)' (choose from \(BenchWorkload.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            if !selected.contains(workload) { selected.append(workload) }
        }
        guard !selected.isEmpty else { throw ValidationError("--workloads names no workload") }
        return selected
    }

    private func plan(_ workload: BenchWorkload) -> BenchPlan {
        BenchPlan(
            workload: workload, messages: messages ?? workload.defaultMessages, size: workload.fixedPayloadSize ?? size,
            policy: workload == .w6 ? slowConsumer.policy : .backpressure,
            stallMilliseconds: workload == .w6 ? 2000 : 0, fairnessScheduling: w7Scheduling)
    }

    /// W9's runs: each payload size, 1 -> 1 and 1 -> 8.
    private func w9Plans() -> [BenchPlan] {
        BenchWorkload.w9Runs.flatMap { run in
            BenchWorkload.w9FanOuts.map { fanOut in
                var plan = plan(.w9)
                plan.size = run.size
                plan.messages = messages ?? run.messages
                plan.fanOut = fanOut
                return plan
            }
        }
    }

    func run() async throws {
        let plans = try selectedWorkloads().flatMap { $0 == .w9 ? w9Plans() : [plan($0)] }
        // Writes to a worker that died must fail with EPIPE, not kill us.
        signal(SIGPIPE, SIG_IGN)
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM, SIGHUP]) {
            ChildRegistry.killAll()
            StandardError.line("\nherald bench: interrupted")
            _exit(130)
        }
        defer { signals.cancel() }
        defer { ExecutableCopy.removeAll() }

        let executable = currentExecutablePath()
        var heraldd: String?
        if spawnBroker {
            guard let found = SpawnedBroker.locateExecutable() else {
                StandardError.line("herald bench: cannot find heraldd next to \(executable) or on $PATH")
                throw ExitCode(ExitStatus.noConnection)
            }
            heraldd = found
        }
        let progress = ProgressLine(enabled: true)
        var broker = BenchReport.Broker(spawned: spawnBroker, executable: heraldd, measured: true)
        var results: [BenchResult] = []
        for (number, plan) in plans.enumerated() {
            progress.begin("\(plan.label)  starting")
            let result: BenchResult
            if plan.workload == .l1 {
                result = runLibrary(plan, executable: executable, progress: progress)
            } else {
                result = try await runWithBroker(plan, number: number, heraldd: heraldd, executable: executable, progress: progress, broker: &broker)
            }
            progress.finish(summaryLine(result))
            results.append(result)
        }
        if let l1 = results.firstIndex(where: { $0.workload == BenchWorkload.l1.rawValue }) {
            results[l1].compareLibrary(withW1: results.first { $0.workload == BenchWorkload.w1.rawValue })
        }

        let report = BenchReport(
            machine: MachineFacts.current(), broker: broker,
            options: BenchReport.Options(
                workloads: plans.map(\.workload.rawValue), messages: messages, size: size, slowConsumer: slowConsumer.rawValue),
            method:
                "W1-W5: subscribers ask for backpressure (lossless: any loss is an error); W6: --slow-consumer \(slowConsumer.rawValue). "
                + "Every client is its own process using the Herald library from one task.",
            results: results, ok: results.allSatisfy(\.isOK))
        Output(fd: 1).write(json ? report.json() : "\n" + report.text())
        if !report.ok { throw ExitCode(1) }
    }

    /// Runs a broker workload: (starts a private broker,) asks the broker who it is, runs, stops it.
    private func runWithBroker(
        _ plan: BenchPlan, number: Int, heraldd: String?, executable: String, progress: ProgressLine,
        broker: inout BenchReport.Broker
    ) async throws -> BenchResult {
        var spawned: SpawnedBroker?
        let address: String
        if let heraldd {
            address = "@herald-bench/\(getpid())/\(number)"
            do {
                // W7's flood runs as nobody when bench runs as root: the private broker admits it.
                let admit = plan.workload == .w7 && getuid() == 0 ? ["--allow-uid", "\(WorkloadRunner.floodUID)"] : []
                spawned = try await SpawnedBroker.start(
                    executable: heraldd, address: address, arguments: admit, scheduling: plan.scheduling(forBroker: true))
            } catch {
                progress.finish("herald bench: \(error)")
                throw ExitCode(ExitStatus.noConnection)
            }
        } else {
            address = BusAddress.resolve(connection.address).description
        }
        defer { spawned?.stop() }

        // WELCOME names the broker process, whose CPU and memory we sample.
        let probe: Bus
        do {
            probe = try await Bus.connect(to: address, options: BusOptions(clientName: "bench-probe"))
        } catch {
            progress.finish("")
            throw Failure.report(error)
        }
        let pid = probe.broker.pid
        broker.serverName = probe.broker.serverName
        if broker.address == nil { broker.address = address }
        await probe.close()
        let visible = BrokerSampler.isVisibleBroker(pid) && (spawned == nil || spawned!.process.pid == Int32(pid))
        if !visible { broker.measured = false }
        let sampler = BrokerSampler(pid: visible ? Int32(pid) : nil)

        let runner = WorkloadRunner(
            plan: plan, address: address, executable: executable, sampler: sampler, progress: progress, timeout: timeout)
        do {
            let record = try runner.run()
            return BenchResult(plan: plan, record: record, sampler: sampler, brokerPID: pid, freshBroker: spawned != nil)
        } catch {
            return BenchResult.failed(plan, error.description)
        }
    }

    private func runLibrary(_ plan: BenchPlan, executable: String, progress: ProgressLine) -> BenchResult {
        let runner = WorkloadRunner(
            plan: plan, address: "", executable: executable, sampler: BrokerSampler(pid: nil), progress: progress,
            timeout: timeout)
        do {
            let record = try runner.run()
            return BenchResult(plan: plan, record: record, sampler: BrokerSampler(pid: nil), brokerPID: nil, freshBroker: false)
        } catch {
            return BenchResult.failed(plan, error.description)
        }
    }

    /// The line left on stderr when a workload ends.
    private func summaryLine(_ result: BenchResult) -> String {
        var line = "\(result.label): "
        if let t = result.throughput {
            line += "\(BenchFormat.short(t.deliveredPerSecond)) msg/s delivered, fraction \(BenchFormat.fixed(t.deliveredFractionMin, 4))"
        } else if let f = result.fairness {
            line += "uid \(f.pingUID) round trip p99 \(BenchFormat.fixed(f.quietP99Micros, 1)) us alone, "
                + "\(BenchFormat.fixed(f.floodedP99Micros, 1)) us while uid \(f.floodUID) floods (\(BenchFormat.fixed(f.p99Ratio, 2))x)"
        } else if let l = result.latency {
            line += "p50 \(BenchFormat.fixed(l.p50Micros, 1)) us, p99 \(BenchFormat.fixed(l.p99Micros, 1)) us"
        } else if let l = result.library {
            line += "publish \(BenchFormat.short(l.publishPerSecond)) msg/s, receive \(BenchFormat.short(l.receivePerSecond)) msg/s"
        }
        line += "  [\(result.status)" + (result.problems.first.map { ": \($0)" } ?? "") + "]"
        return line
    }
}

/// `--w7-scheduling shared|isolated`.
extension FairnessScheduling: ExpressibleByArgument {}
