import ArgumentParser

/// `herald`: the command-line client of the Herald message bus.
@main
struct HeraldCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "herald",
        abstract: "Publish, subscribe, ask and answer on a Herald message bus.",
        discussion: """
            Every command connects to the broker at --address: '@name' for an abstract socket or a \
            filesystem path. Without --address, $HERALD_ADDRESS is used, or else the per-user default \
            @herald/<uid>.

            Exit status: 0 success; 1 the request failed (invalid topic or filter, refused by the \
            broker); 2 no connection (broker unreachable, not authorized, handshake failed); 3 the \
            connection to the broker was lost or closed by the broker; 4 a request got no answer \
            (nobody serves its topic, the responder left, or it timed out); 64 usage error.
            """,
        subcommands: [PubCommand.self, SubCommand.self, ReqCommand.self, ReplyCommand.self, SendCommand.self, PeersCommand.self, StatsCommand.self, MonitorCommand.self, PingCommand.self, BenchCommand.self, BenchWorkerCommand.self])
}
