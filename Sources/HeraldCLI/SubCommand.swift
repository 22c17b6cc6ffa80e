import ArgumentParser
import Dispatch
import Herald
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `herald sub FILTER...`: prints the messages matching any of the filters.
struct SubCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sub",
        abstract: "Print the messages published on topics matching the filters.",
        discussion: """
            Each message is printed once (even if several filters match) as one line: \
            'TOPIC PAYLOAD  [peer ID pid PID uid UID]', where PAYLOAD is the text, or 0x… hex if it \
            is not UTF-8, and PID is '0 (exited)' when the process that opened the publishing connection \
            has exited and another process holds its socket. A topic's retained message (its current \
            value, published before the subscription began) comes first and is marked '(retained)' \
            after the payload (JSON: \"retained\": true and \"retained_at\", seconds since the epoch). SIGINT or SIGTERM unsubscribes, closes the connection and exits 0. If the \
            broker goes away (a restart), reconnects and goes on printing, with a note on standard error; \
            with --no-reconnect it exits 3 instead. Drop notices go to standard error. File descriptors \
            passed with a message are described after it ('[fds: pipe, memfd 4096 B (sealed)]'; JSON: \
            \"fds\"), and closed once it is printed; a payload that came as a sealed memfd is shown by \
            its size ('<N bytes in a sealed memfd>'; JSON: \"payload_size\", \"sealed_payload\") and \
            written out with --save-dir.
            """)

    /// The slow-consumer policy as a command-line value.
    enum Policy: String, ExpressibleByArgument, CaseIterable {
        case drop, disconnect, backpressure

        var policy: SlowConsumerPolicy {
            switch self {
            case .drop: .drop
            case .disconnect: .disconnect
            case .backpressure: .backpressure
            }
        }
    }

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Topic filters: '+' matches one level, a final '#' any number (e.g. power/+ sensors/#).")
    var filters: [String]

    @Flag(help: "Print one JSON object per line: topic, payload (text or null), payload_base64, sender, dropped_before.")
    var json = false

    @Flag(name: .customLong("no-sender"), help: "Leave the sender out of human-readable lines.")
    var noSender = false

    @Option(help: ArgumentHelp("Exit (status 0) after N messages.", valueName: "N"))
    var count: Int?

    @Flag(name: .customLong("no-reconnect"), help: "Exit (status 3) if the broker goes away instead of reconnecting.")
    var noReconnect = false

    @Option(
        name: .customLong("slow-consumer"),
        help: ArgumentHelp(
            "What the broker does if this subscriber falls behind: drop (count and skip messages), disconnect, or backpressure (slow the publishers).",
            valueName: "policy"))
    var slowConsumer: Policy = .drop

    @Option(
        name: .customLong("save-dir"),
        help: ArgumentHelp(
            "Write payloads that came as sealed memfds, and memfds passed with messages, to files in this directory (N-TOPIC.bin).",
            valueName: "dir"))
    var saveDirectory: String?

    func validate() throws {
        guard !filters.isEmpty else { throw ValidationError("give at least one topic filter") }
        if let saveDirectory {
            var status = stat()
            guard stat(saveDirectory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
                throw ValidationError("--save-dir \(saveDirectory) is not a directory")
            }
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        var options = BusOptions()
        options.slowConsumerPolicy = slowConsumer.policy
        if noReconnect { options.reconnect = nil }
        let bus = try await connection.connect(options: options)
        let subscription: Subscription
        do {
            subscription = try await bus.subscribe(filters)
        } catch {
            await bus.close()
            throw Failure.report(error)
        }

        let interrupted = Atomic<Bool>(false)
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) {
            if interrupted.exchange(true, ordering: .relaxed) {
                _exit(130)  // a second signal while closing: give up at once
            }
            Task { await bus.close() }
        }
        defer { signals.cancel() }

        let events = bus.events()
        let eventTask = Task {
            for await event in events {
                switch event {
                case .messagesDropped(let dropped, _):
                    StandardError.line("herald: broker dropped \(dropped) messages (slow consumer)")
                case .reconnecting(let reason):
                    StandardError.line("herald: lost the broker (\(reason)); reconnecting")
                case .reconnected(let attempt, let downtime):
                    let milliseconds = Int(downtime.components.seconds * 1000 + downtime.components.attoseconds / 1_000_000_000_000_000)
                    StandardError.line(
                        "herald: reconnected after \(milliseconds) ms (attempt \(attempt)); messages published meanwhile were not delivered")
                default:
                    break
                }
            }
        }
        defer { eventTask.cancel() }

        let printer = MessagePrinter(json: json, showSender: !noSender)
        let saver = saveDirectory.map(PayloadSaver.init(directory:))
        var received = 0
        do {
            for try await message in subscription {
                printer.print(message, saved: saver?.save(message, number: received + 1) ?? [])
                received += 1
                if let count, received >= count { break }
            }
        } catch {
            if interrupted.load(ordering: .relaxed) { return }
            throw Failure.report(error)
        }
        if let count, received >= count {
            await bus.close()
            return
        }
        if interrupted.load(ordering: .relaxed) {
            await bus.close()
            return
        }
        // The subscription ended without us asking: the broker said goodbye.
        let reason = bus.disconnectReason ?? .connectionClosed(reason: "the subscription ended")
        await bus.close()
        throw Failure.report(reason)
    }
}
