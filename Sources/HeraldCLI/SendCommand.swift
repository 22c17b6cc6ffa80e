import ArgumentParser
import Herald

/// `herald send PEER TOPIC [MESSAGE]`: a direct message to one peer by its peer id.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to one peer, by its peer id.",
        discussion: """
            The message goes to that connection alone (it must accept direct messages: \
            BusOptions.acceptsDirectMessages), not to subscribers. Peer ids are in 'herald sub' \
            output ([peer N ...]) and in WELCOME. Without MESSAGE, each line of standard input is sent. \
            Exits once the broker has handled every message: status 1 if the peer is not connected or \
            does not accept direct messages.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The peer id to send to.")
    var peer: UInt64

    @Argument(help: "The topic the message is about, e.g. session/lock.")
    var topic: String

    @Argument(help: "The message text. Without it, each line of standard input is one message.")
    var message: String?

    func run() async throws {
        do {
            try Topic.validatePublishable(topic, maxLength: ProtocolLimits.maxTopicLengthCeiling)
        } catch {
            throw Failure.report(.invalidTopic(topic, reason: "it \(error)"))
        }
        let bus = try await connection.connect()
        do {
            if let message {
                try await bus.send(to: peer, topic, message)
            } else {
                var lines = LineReader(fd: 0)
                while let line = lines.next() { try await bus.send(to: peer, topic, line) }
            }
            try await bus.flush()
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        await bus.close()
    }
}
