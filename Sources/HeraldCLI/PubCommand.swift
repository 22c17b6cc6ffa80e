import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald pub TOPIC [MESSAGE]`: publishes a message, or one per line of standard input.
struct PubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pub",
        abstract: "Publish a message, or one message per line of standard input.",
        discussion: """
            Exits once the broker has routed every message (it flushes before exiting). Lines are \
            published as bytes, without their trailing newline; a last line without a newline is \
            published too. A broker that restarts meanwhile is reconnected to and the messages not yet \
            sent go to the next one; with --wait, a broker not yet listening is waited for. With \
            --retain the broker keeps the (last) message as the topic's current value, which every later \
            subscriber receives first; '--retain TOPIC ""' clears it.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The topic to publish on, e.g. power/battery (no '+', '#', empty levels, or leading '$').")
    var topic: String

    @Argument(help: "The message text. Without it, each line of standard input is published as one message.")
    var message: String?

    @Option(name: .customLong("repeat"), help: ArgumentHelp("Publish each message N times.", valueName: "N"))
    var repeatCount = 1

    @Flag(help: "Keep the message as the topic's retained message (its current value); an empty message clears it.")
    var retain = false

    @Option(help: ArgumentHelp("Wait up to this many seconds for a broker that is not listening yet (starting or restarting).", valueName: "seconds"))
    var wait: Double = 0

    func validate() throws {
        guard repeatCount >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard wait >= 0 else { throw ValidationError("--wait must not be negative") }
    }

    func run() async throws {
        // Check the topic grammar before connecting (the broker's length limit is checked after).
        do {
            try Topic.validatePublishable(topic, maxLength: ProtocolLimits.maxTopicLengthCeiling)
        } catch {
            throw Failure.report(.invalidTopic(topic, reason: "it \(error)"))
        }
        let bus = try await connection.connect(wait: wait)
        do {
            if let message {
                for _ in 0..<repeatCount { try await bus.publish(topic, message, retain: retain) }
            } else {
                var lines = LineReader(fd: 0)
                while let line = lines.next() {
                    for _ in 0..<repeatCount { try await bus.publish(topic, line, retain: retain) }
                }
            }
            try await bus.flush()
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        await bus.close()
    }
}

/// Splits a file descriptor's bytes into lines (without the newline), reading in large chunks.
struct LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)
    private var start = 0
    /// Bytes before this index (from `start`) hold no newline.
    private var scanned = 0
    private var atEnd = false

    init(fd: Int32) {
        self.fd = fd
    }

    /// The next line, or nil at end of input.
    mutating func next() -> ArraySlice<UInt8>? {
        while true {
            if let newline = buffer[max(start, scanned)...].firstIndex(of: UInt8(ascii: "\n")) {
                let line = buffer[start..<newline]
                start = newline + 1
                scanned = start
                return line
            }
            scanned = buffer.count
            if atEnd {
                guard start < buffer.count else { return nil }
                let line = buffer[start...]
                start = buffer.count
                return line
            }
            if start > 0 {
                buffer.removeSubrange(..<start)
                scanned -= start
                start = 0
            }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n > 0 { buffer.append(contentsOf: chunk[..<n]) }
            if n <= 0 { atEnd = true }
        }
    }
}
