import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald req TOPIC [MESSAGE]`: asks one responder and prints its answer.
struct ReqCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "req",
        abstract: "Send a request and print the answer.",
        discussion: """
            The broker hands the request to one responder subscribed to TOPIC ('herald reply', or \
            Bus.requests(on:) in a program) and routes its answer back. The answer's bytes are written \
            to standard output as they are, followed by a newline; with --json, one object with the \
            payload and the responder's identity. Without MESSAGE, standard input is the request. \
            Exit status 4 if nobody answers: no responder serves TOPIC, the responder left, or \
            --timeout passed; 1 if the responder failed the request (its message on standard error).
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The topic to send the request on, e.g. settings/get.")
    var topic: String

    @Argument(help: "The request text. Without it, all of standard input is the request.")
    var message: String?

    @Option(help: ArgumentHelp("Seconds to wait for the answer.", valueName: "seconds"))
    var timeout: Double = 5

    @Flag(help: "Print the answer as one JSON object: topic, payload (text or null), payload_base64, sender.")
    var json = false

    func validate() throws {
        guard timeout > 0, timeout.isFinite else { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        do {
            try Topic.validatePublishable(topic, maxLength: ProtocolLimits.maxTopicLengthCeiling)
        } catch {
            throw Failure.report(.invalidTopic(topic, reason: "it \(error)"))
        }
        let payload = message.map { Array($0.utf8) } ?? Self.readStandardInput()
        let bus = try await connection.connect()
        let answer: Message
        do {
            answer = try await bus.request(topic, payload, timeout: .milliseconds(Int64(timeout * 1000)))
        } catch {
            await bus.close()
            if case .timeout = error {
                StandardError.line("herald: no answer to the request on '\(topic)' within \(timeout) s")
                throw ExitCode(ExitStatus.noAnswer)
            }
            throw Failure.report(error)
        }
        if json {
            MessagePrinter(json: true, showSender: true).print(answer)
        } else {
            // A newline after the answer unless it ends with one (an --exec answer often does).
            let line = answer.payload.last == 0x0A ? answer.payload : answer.payload + [0x0A]
            line.withUnsafeBytes { _ = Output(fd: 1).write($0) }
        }
        await bus.close()
    }

    /// All of standard input.
    static func readStandardInput() -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return bytes }
            bytes += chunk[..<n]
        }
    }
}
