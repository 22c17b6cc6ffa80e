#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The whole `herald bench` report: machine facts, broker, options and one result per
/// workload. `--json` prints it as one JSON document; otherwise it is rendered as tables.
struct BenchReport: Codable, Sendable {
    struct Broker: Codable, Sendable {
        /// What the broker called itself in WELCOME.
        var serverName: String?
        /// Where it listened (for a spawned broker: the first workload's address).
        var address: String?
        /// Started by `herald bench` (fresh for every workload) rather than already running.
        var spawned: Bool
        var executable: String?
        /// Whether its /proc entry was visible, so CPU and memory could be measured.
        var measured: Bool
    }

    struct Options: Codable, Sendable {
        var workloads: [String]
        var messages: Int?
        var size: Int
        var slowConsumer: String
    }

    var tool = "herald bench"
    var machine: MachineFacts
    var broker: Broker
    var options: Options
    /// W1–W5 subscribers ask for backpressure: those workloads are lossless, so any loss is an error.
    var method: String
    var results: [BenchResult]
    var ok: Bool

    /// The report as one JSON document.
    func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(self) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    /// The report as human-readable tables.
    /// W9's runs in GB/s beside W5 (inline 4 KiB, 1 -> 1) of the same run, if both ran.
    private func largePayloadComparison() -> String {
        let sealed = results.filter { $0.workload == BenchWorkload.w9.rawValue && $0.throughput != nil }
        guard !sealed.isEmpty else { return "" }
        let w5 = results.first { $0.workload == BenchWorkload.w5.rawValue }?.throughput
        var rows: [[String]] = []
        if let w5 { rows.append(["W5 1->1 4 KiB inline", BenchFormat.fixed(w5.megabytesPerSecond / 1000, 2), "1.00"]) }
        for result in sealed {
            let gigabytes = result.throughput!.megabytesPerSecond / 1000
            let ratio = w5.map { BenchFormat.fixed(result.throughput!.megabytesPerSecond / max(1e-9, $0.megabytesPerSecond), 2) } ?? "-"
            rows.append([result.label, BenchFormat.fixed(gigabytes, 2), ratio])
        }
        return "\nLarge payloads (W9) against W5, payload bytes delivered:\n"
            + table(["workload", "GB/s", "x W5"], rows)
    }

    func text() -> String {
        var out = "herald bench  \(machine.date)  \(machine.nproc) x \(machine.cpuModel)  Linux \(machine.kernel)\n"
        let brokerName = broker.serverName ?? "broker"
        if broker.spawned {
            out += "broker: \(brokerName), a fresh private one per workload (\(broker.executable ?? "heraldd"))\n"
        } else {
            out += "broker: \(brokerName) at \(broker.address ?? "?")\n"
        }
        if !broker.measured { out += "(broker CPU/RSS not measured: its pid from WELCOME is not visible here)\n" }
        out += method + "\n\n"

        let throughputResults = results.filter { $0.throughput != nil }
        if !throughputResults.isEmpty {
            let header = [
                "workload", "msgs/s", "MB/s", "delivered", "pub msgs/s", "lost/dup/reord", "delay p50/p99 ms",
                "broker CPU", "broker RSS MiB", "clients CPU", "other CPU",
            ]
            var rows: [[String]] = []
            for result in throughputResults {
                let t = result.throughput!
                let r = result.resources
                rows.append([
                    result.label, BenchFormat.grouped(t.deliveredPerSecond), BenchFormat.fixed(t.megabytesPerSecond, 1),
                    BenchFormat.fixed(t.deliveredFractionMin, 4), BenchFormat.grouped(t.publisherPerSecond),
                    "\(t.lost)/\(t.duplicates)/\(t.reordered)",
                    BenchFormat.fixed(t.delayP50Micros / 1000, 1) + "/" + BenchFormat.fixed(t.delayP99Micros / 1000, 1),
                    BenchFormat.percent(r.brokerCPUPercent),
                    BenchFormat.mebibytes(r.brokerRSSBeforeKibibytes) + " -> " + BenchFormat.mebibytes(r.brokerRSSPeakKibibytes),
                    BenchFormat.percent(r.clientCPUPercent), BenchFormat.percent(r.otherCPUPercent),
                ])
            }
            out += table(header, rows)
            out += "msgs/s: all deliveries / (latest last - earliest first receive); delivered: least-served subscriber; "
            out += "delay: send to receive under this load (worst subscriber); "
            out += "CPU in % of one core over the delivery window (clients include their bus I/O threads; other = the rest of the machine)\n"
        }

        out += largePayloadComparison()

        for result in results {
            if let latency = result.latency {
                out += "\n\(result.label): \(BenchFormat.grouped(Double(latency.roundTrips))) round trips after "
                out += "\(latency.warmup) warm-up, one in flight (\(BenchFormat.grouped(latency.roundTripsPerSecond))/s)\n"
                out += table(
                    ["", "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "min us", "mean us", "broker CPU", "clients CPU"],
                    [[
                        "round trip", BenchFormat.fixed(latency.p50Micros, 1), BenchFormat.fixed(latency.p90Micros, 1),
                        BenchFormat.fixed(latency.p99Micros, 1), BenchFormat.fixed(latency.p999Micros, 1),
                        BenchFormat.fixed(latency.maxMicros, 1), BenchFormat.fixed(latency.minMicros, 1),
                        BenchFormat.fixed(latency.meanMicros, 1), BenchFormat.percent(result.resources.brokerCPUPercent),
                        BenchFormat.percent(result.resources.clientCPUPercent),
                    ]])
            }
            if let fairness = result.fairness {
                let sameUser = fairness.pingUID == fairness.floodUID
                out += "\n\(result.label): uid \(fairness.pingUID)'s round trips alone, then while "
                out += sameUser ? "another connection of the same uid floods (run as root to flood as nobody)" : "uid \(fairness.floodUID) floods"
                out += fairness.scheduling == FairnessScheduling.isolated.rawValue
                    ? "; the broker and uid \(fairness.pingUID)'s processes run SCHED_FIFO, the flood does not\n"
                    : "; every process shares the CPUs at the default policy\n"
                out += table(
                    ["uid \(fairness.pingUID) round trip", "p50 us", "p99 us", "flood msg/s"],
                    [
                        ["alone", BenchFormat.fixed(fairness.quietP50Micros, 1), BenchFormat.fixed(fairness.quietP99Micros, 1), "-"],
                        ["under the flood", BenchFormat.fixed(fairness.floodedP50Micros, 1), BenchFormat.fixed(fairness.floodedP99Micros, 1),
                            BenchFormat.short(fairness.floodPerSecond)],
                        ["ratio", BenchFormat.fixed(fairness.p50Ratio, 2) + "x", BenchFormat.fixed(fairness.p99Ratio, 2) + "x", ""],
                    ])
            }
            if let slow = result.slowConsumer {
                out += "\n\(result.label): subscriber 0 stops reading for 2 s after its first message\n"
                out += "  promise: \(slow.promise)\n"
                out += "  \(slow.verdict)\n"
                out += "  stalled subscriber delivered \(BenchFormat.fixed(slow.stalledFraction, 4)), lost \(BenchFormat.grouped(Double(slow.lost[0]))), "
                out += "announced \(BenchFormat.grouped(Double(slow.droppedAnnounced[0]))) in \(slow.dropNotices[0]) drop notices"
                out += " (droppedBefore sum \(BenchFormat.grouped(Double(slow.droppedBefore[0]))))"
                out += slow.disconnects[0].map { ", disconnected: \($0)" } ?? ", not disconnected"
                out += "\n"
                out += "  fast subscriber delivered \(BenchFormat.fixed(slow.fastFraction, 4)) at \(BenchFormat.grouped(slow.fastPerSecond)) msg/s"
                out += ", lost \(BenchFormat.grouped(Double(slow.lost[1]))), announced \(BenchFormat.grouped(Double(slow.droppedAnnounced[1])))"
                out += slow.disconnects[1].map { ", disconnected: \($0)" } ?? ", not disconnected"
                out += "\n"
                out += "  publisher \(BenchFormat.grouped(slow.publisherPerSecond)) msg/s; broker RSS peak \(BenchFormat.mebibytes(slow.brokerRSSPeakKibibytes)) MiB\n"
            }
            if let library = result.library {
                out += "\n\(result.label): one task each way, against a loopback broker (a thread that only answers the protocol)\n"
                out += "  publish: \(BenchFormat.grouped(library.publishPerSecond)) msg/s until flushed "
                out += "(calls alone \(BenchFormat.grouped(library.publishCallsPerSecond)) msg/s), "
                out += "\(BenchFormat.fixed(library.publishCPUNanosPerMessage, 0)) ns CPU per message\n"
                out += "  receive: \(BenchFormat.grouped(library.receivePerSecond)) msg/s, "
                out += "\(BenchFormat.fixed(library.receiveCPUNanosPerMessage, 0)) ns CPU per message "
                out += "(loopback sender used \(BenchFormat.percent(library.loopbackSendCPUPercent)) of a core)\n"
                if let delivered = library.brokerW1PerSecond, let publishW1 = library.publishRatioToW1,
                    let receiveW1 = library.receiveRatioToW1
                {
                    out += "  W1 in this run delivered \(BenchFormat.grouped(delivered)) msg/s"
                    out += ": publish is \(BenchFormat.percent(publishW1 * 100)) of that, receive \(BenchFormat.percent(receiveW1 * 100))\n"
                    if let perCore = library.brokerPerCoreSecond, let cpu = library.brokerW1CPUPercent,
                        let publish = library.publishRatioToBroker, let receive = library.receiveRatioToBroker
                    {
                        out += "  the broker used \(BenchFormat.percent(cpu)) of a core for it: \(BenchFormat.grouped(perCore)) msg/s per broker CPU-second"
                        out += cpu < 90 ? " (W1 was limited by its clients, not the broker)\n" : "\n"
                        out += "  against that: publish \(BenchFormat.percent(publish * 100)), receive \(BenchFormat.percent(receive * 100))"
                    } else {
                        out += " "
                    }
                    out += library.meetsTarget == true ? " -> meets the >= 50 % target\n" : " -> BELOW the >= 50 % target\n"
                } else {
                    out += "  (run W1 in the same invocation to compare with the broker)\n"
                }
            }
        }

        let problems = results.filter { !$0.isOK }
        if !problems.isEmpty {
            out += "\nproblems:\n"
            for result in problems {
                for problem in result.problems { out += "  \(result.workload) [\(result.status)]: \(problem)\n" }
            }
        }
        return out
    }

    /// Left-aligned first column, right-aligned numbers.
    private func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        var out = ""
        for row in all {
            let cells = row.enumerated().map { column, cell in BenchFormat.pad(cell, widths[column], right: column > 0) }
            out += cells.joined(separator: "  ") + "\n"
        }
        return out
    }
}
