import Foundation
import Testing

/// `herald bench` runs end to end and finds no gaps (a smoke run; the numbers are not checked:
/// benchmarks are never timed assertions).
@Suite("herald bench smoke", .timeLimit(.minutes(2)))
struct BenchSmokeTests {
    @Test func spawnsABrokerRunsWorkloadsAndReportsNoGaps() async throws {
        let cli = try CLIProcess(["bench", "--spawn-broker", "--workloads", "W1,W4,W8", "--messages", "20000", "--json"])
        cli.write("", close: true)
        let status = await cli.waitForExit(timeout: 100)
        #expect(status == 0, "stderr: \(cli.standardError.suffix(2000))")
        let json = try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any]
        let results = json?["results"] as? [[String: Any]]
        #expect(results?.count == 3, "one result per workload: \(cli.standardOutput.prefix(500))")
        for result in results ?? [] {
            #expect(result["status"] as? String == "ok", "\(result["workload"] ?? "?"): \(result["problems"] ?? "")")
            #expect((result["problems"] as? [Any])?.isEmpty == true, "no gaps, duplicates or reordering")
        }
        #expect(Set((results ?? []).compactMap { $0["workload"] as? String }) == ["W1", "W4", "W8"])
    }

    /// W7: the round trips alone and under a flood (as nobody when run as root), both reported.
    @Test func fairnessWorkloadReportsBothPhases() async throws {
        let cli = try CLIProcess(["bench", "--spawn-broker", "--workloads", "W7", "--messages", "2000", "--json"])
        cli.write("", close: true)
        #expect(await cli.waitForExit(timeout: 100) == 0, "stderr: \(cli.standardError.suffix(2000))")
        let json = try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any]
        let result = (json?["results"] as? [[String: Any]])?.first
        #expect(result?["status"] as? String == "ok", "\(result?["problems"] ?? "")")
        let fairness = result?["fairness"] as? [String: Any]
        #expect((fairness?["quiet_p99_micros"] as? Double ?? 0) > 0 && (fairness?["flooded_p99_micros"] as? Double ?? 0) > 0)
        #expect((fairness?["flood_sent"] as? Int ?? 0) > 0, "the flood ran")
        if getuid() == 0 { #expect(fairness?["flood_uid"] as? Int == 65534, "as root, the flood runs as nobody") }
    }

    /// W9: every payload size and shape as sealed memfds, all delivered and intact, beside W5.
    @Test func largePayloadWorkloadRunsEverySizeAndShape() async throws {
        let cli = try CLIProcess(["bench", "--spawn-broker", "--workloads", "W5,W9", "--messages", "20", "--json"])
        cli.write("", close: true)
        #expect(await cli.waitForExit(timeout: 100) == 0, "stderr: \(cli.standardError.suffix(2000))")
        let json = try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any]
        let results = (json?["results"] as? [[String: Any]]) ?? []
        let sealed = results.filter { $0["workload"] as? String == "W9" }
        #expect(sealed.count == 8, "4 sizes, 1 -> 1 and 1 -> 8")
        #expect(Set(sealed.compactMap { $0["payload_bytes"] as? Int }) == [1 << 10, 64 << 10, 1 << 20, 64 << 20])
        for result in results {
            #expect(result["status"] as? String == "ok", "\(result["label"] ?? "?"): \(result["problems"] ?? "")")
        }
    }
}
