import ArgumentParser
import Foundation
import Herald

/// `herald stats`: the broker's counters and per-uid usage.
struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show the broker's counters and each user's share of it.",
        discussion: """
            Counters since the broker started (connections, messages in and out, drops, disconnects \
            and refusals by reason, requests), retained messages, then one line per uid: connections, \
            subscriptions, queued output and retained messages, against the per-uid quotas. --json \
            prints the broker's answer. The broker answers this itself (a request on $SYS/broker/stats).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the broker's JSON answer.")
    var json = false

    func run() async throws {
        try await BrokerQuery.run(connection, topic: "$SYS/broker/stats", json: json) { bus throws(HeraldError) in
            let stats = try await bus.brokerStatistics()
            var text = "\(stats.broker.name) (pid \(stats.broker.pid), uid \(stats.broker.uid))\n\n"
            var counters = TextTable(["COUNTER", "VALUE"], numeric: [1])
            for (name, value) in stats.counters.sorted(by: { $0.key < $1.key }) {
                counters.add([name.replacingOccurrences(of: "_", with: " "), "\(value)"])
            }
            counters.add(["retained messages held", "\(stats.retained.messages)"])
            counters.add(["retained bytes held", "\(stats.retained.bytes)"])
            counters.add(["requests waiting for a reply", "\(stats.waitingRequests)"])
            text += counters.text + "\n"
            var users = TextTable(
                ["UID", "CONNECTIONS", "SUBSCRIPTIONS", "QUEUED BYTES", "RETAINED", "RETAINED BYTES"], numeric: [0, 1, 2, 3, 4, 5])
            for usage in stats.uids {
                users.add([
                    "\(usage.uid)", "\(usage.connections)", "\(usage.subscriptions)", "\(usage.queuedBytes)",
                    "\(usage.retainedMessages)", "\(usage.retainedBytes)",
                ])
            }
            let limits = stats.limits
            users.add([
                "quota", "\(limits["max_connections_per_uid"] ?? 0)", "\(limits["max_subscriptions_per_uid"] ?? 0)",
                "\(limits["max_queued_bytes_per_uid"] ?? 0)", "\(limits["max_retained_per_uid"] ?? 0)",
                "\(limits["max_retained_bytes_per_uid"] ?? 0)",
            ])
            return text + users.text
        }
    }
}
