#if canImport(Glibc)
import Glibc
#endif

/// Samples the broker's CPU time and RSS (from /proc/<pid>/stat and statm) and the whole
/// machine's busy and steal time (/proc/stat) every 20 ms, as the peer harness does, so
/// the report can say who used the CPU: the broker, the clients, or someone else.
final class BrokerSampler {
    struct Sample {
        var time: UInt64
        /// Broker utime + stime, in clock ticks (nil: not visible).
        var brokerTicks: Int?
        var brokerRSSKiB: Int?
        /// Whole machine, clock ticks summed over all CPUs.
        var machineBusyTicks: Int
        var machineStealTicks: Int
    }

    /// The broker's pid, if its /proc entry is visible (same pid namespace).
    let pid: Int32?
    private(set) var samples: [Sample] = []
    private let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    private let pageKiB = Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    static let interval: UInt64 = 20_000_000

    init(pid: Int32?) {
        self.pid = pid
    }

    /// Whether /proc/<pid> exists and is a heraldd (the pid in WELCOME is the broker's own
    /// view: in another pid namespace it names some other process here, or none).
    static func isVisibleBroker(_ pid: UInt32) -> Bool {
        guard let comm = readSmallTextFile("/proc/\(pid)/comm") else { return false }
        return comm.hasPrefix("heraldd")
    }

    /// Takes a sample if the last one is at least 20 ms old.
    func sampleIfDue() {
        if let last = samples.last, monotonicNanos() - last.time < BrokerSampler.interval { return }
        sample()
    }

    /// Takes a sample now.
    func sample() {
        var sample = Sample(time: monotonicNanos(), machineBusyTicks: 0, machineStealTicks: 0)
        if let pid {
            sample.brokerTicks = readBrokerTicks(pid)
            if let statm = readSmallTextFile("/proc/\(pid)/statm") {
                let fields = statm.split(separator: " ")
                if fields.count > 1, let pages = Int(fields[1]) { sample.brokerRSSKiB = pages * pageKiB }
            }
        }
        if let stat = readSmallTextFile("/proc/stat"), let line = stat.split(separator: "\n").first {
            // cpu user nice system idle iowait irq softirq steal ...
            let values = line.split(separator: " ").dropFirst().compactMap { Int($0) }
            if values.count >= 8 {
                sample.machineBusyTicks = values[0] + values[1] + values[2] + values[5] + values[6] + values[7]
                sample.machineStealTicks = values[7]
            }
        }
        samples.append(sample)
    }

    private func readBrokerTicks(_ pid: Int32) -> Int? {
        guard let stat = readSmallTextFile("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name: state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return nil }
        return user + system
    }

    /// The samples bracketing [start, end]: the last at or before `start`, the first at or after `end`.
    private func bracket(_ start: UInt64, _ end: UInt64) -> (Sample, Sample)? {
        guard samples.count >= 2 else { return nil }
        let first = samples.last(where: { $0.time <= start }) ?? samples[0]
        let last = samples.first(where: { $0.time >= end }) ?? samples[samples.count - 1]
        guard last.time > first.time else { return nil }
        return (first, last)
    }

    /// Broker CPU in % of one core over [start, end].
    func brokerCPUPercent(_ start: UInt64, _ end: UInt64) -> Double? {
        guard let (a, b) = bracket(start, end), let ticksA = a.brokerTicks, let ticksB = b.brokerTicks else { return nil }
        return 100 * Double(ticksB - ticksA) / ticksPerSecond / secondsBetween(a.time, b.time)
    }

    /// Whole-machine busy and steal time in % of one core over [start, end].
    func machinePercent(_ start: UInt64, _ end: UInt64) -> (busy: Double, steal: Double)? {
        guard let (a, b) = bracket(start, end) else { return nil }
        let seconds = secondsBetween(a.time, b.time)
        return (
            100 * Double(b.machineBusyTicks - a.machineBusyTicks) / ticksPerSecond / seconds,
            100 * Double(b.machineStealTicks - a.machineStealTicks) / ticksPerSecond / seconds
        )
    }

    /// Broker RSS at the last sample at or before `time`.
    func brokerRSSKiB(at time: UInt64) -> Int? {
        (samples.last(where: { $0.time <= time }) ?? samples.first)?.brokerRSSKiB
    }

    /// Largest broker RSS sampled at or after `time`.
    func brokerRSSPeakKibibytes(since time: UInt64) -> Int? {
        samples.filter { $0.time >= time }.compactMap(\.brokerRSSKiB).max()
    }

    /// The broker's VmHWM (peak RSS over its whole life).
    func brokerHighWaterMarkKiB() -> Int? {
        guard let pid, let status = readSmallTextFile("/proc/\(pid)/status"),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "")
    }
}
