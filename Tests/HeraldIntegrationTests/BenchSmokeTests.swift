import Foundation
import Testing

/// `herald bench` runs end to end and finds no gaps (a smoke run; the numbers are not checked:
/// benchmarks are never timed assertions).
@Suite("herald bench smoke", .timeLimit(.minutes(2)))
struct BenchSmokeTests {
    @Test func spawnsABrokerRunsWorkloadsAndReportsNoGaps() throws {
        let cli = try CLIProcess(["bench", "--spawn-broker", "--workloads", "W1,W4", "--messages", "20000", "--json"])
        cli.write("", close: true)
        let status = cli.waitForExit(timeout: 100)
        #expect(status == 0, "stderr: \(cli.standardError.suffix(2000))")
        let json = try JSONSerialization.jsonObject(with: Data(cli.standardOutput.utf8)) as? [String: Any]
        let results = json?["results"] as? [[String: Any]]
        #expect(results?.count == 2, "one result per workload: \(cli.standardOutput.prefix(500))")
        for result in results ?? [] {
            #expect(result["status"] as? String == "ok", "\(result["workload"] ?? "?"): \(result["problems"] ?? "")")
            #expect((result["problems"] as? [Any])?.isEmpty == true, "no gaps, duplicates or reordering")
        }
        #expect(Set((results ?? []).compactMap { $0["workload"] as? String }) == ["W1", "W4"])
    }
}
