import ArgumentParser
import Herald

/// `herald peers`: who is connected to the broker.
struct PeersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peers",
        abstract: "List the peers connected to the broker.",
        discussion: """
            One line per connection: peer id, name, pid, uid, process name ('(exited)' when the \
            process that connected is gone but its connection lives on), state, subscriptions, \
            queued bytes, messages published, received and dropped. --json prints the broker's \
            answer (an array of objects, with each subscription's filter). The broker answers this \
            itself (a request on $SYS/broker/peers); its policy may refuse it.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Flag(help: "Print the broker's JSON answer.")
    var json = false

    func run() async throws {
        try await BrokerQuery.run(connection, topic: "$SYS/broker/peers", json: json) { bus throws(HeraldError) in
            let peers = try await bus.peers()
            var table = TextTable(
                ["PEER", "NAME", "PID", "UID", "PROCESS", "STATE", "SUBS", "QUEUED", "PUBLISHED", "RECEIVED", "DROPPED"],
                numeric: [0, 2, 3, 6, 7, 8, 9, 10])
            for peer in peers {
                table.add([
                    "\(peer.peer)", peer.name.isEmpty ? "-" : peer.name, "\(peer.processExited ? 0 : peer.pid)", "\(peer.uid)",
                    peer.processExited ? "(exited)" : (peer.process.isEmpty ? "-" : peer.process),
                    peer.peer == bus.peerID ? "\(peer.state) (this)" : peer.state, "\(peer.subscriptions.count)",
                    "\(peer.queuedBytes)", "\(peer.published)", "\(peer.received)", "\(peer.dropped)",
                ])
            }
            return table.text
        }
    }
}
