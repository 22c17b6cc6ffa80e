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
            is not UTF-8. SIGINT or SIGTERM unsubscribes, closes the connection and exits 0. If the \
            broker goes away, exits 3. Drop notices go to standard error.
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

    @Option(
        name: .customLong("slow-consumer"),
        help: ArgumentHelp(
            "What the broker does if this subscriber falls behind: drop (count and skip messages), disconnect, or backpressure (slow the publishers).",
            valueName: "policy"))
    var slowConsumer: Policy = .drop

    func validate() throws {
        guard !filters.isEmpty else { throw ValidationError("give at least one topic filter") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        var options = BusOptions()
        options.slowConsumerPolicy = slowConsumer.policy
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
                if case .messagesDropped(let dropped, _) = event {
                    StandardError.line("herald: broker dropped \(dropped) messages (slow consumer)")
                }
            }
        }
        defer { eventTask.cancel() }

        let printer = MessagePrinter(json: json, showSender: !noSender)
        var received = 0
        do {
            for try await message in subscription {
                printer.print(message)
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

/// Runs a handler (on a background queue) when one of the given signals arrives, instead of
/// the default action.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], handler: @escaping @Sendable () -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    /// Stops watching (the signals stay ignored until exit).
    func cancel() {
        for source in sources { source.cancel() }
    }
}

/// Formats messages as human-readable or JSON lines on standard output, one write per line.
struct MessagePrinter {
    let json: Bool
    let showSender: Bool
    private let output = Output(fd: 1)

    init(json: Bool, showSender: Bool) {
        self.json = json
        self.showSender = showSender
    }

    func print(_ message: Message) {
        output.write(json ? jsonLine(message) : humanLine(message))
    }

    private func humanLine(_ message: Message) -> String {
        var line = message.topic
        line += " "
        line += message.string ?? "0x" + hex(message.payload)
        if showSender {
            let sender = message.sender
            line += "  [peer \(sender.peerID) pid \(sender.pid) uid \(sender.uid)]"
        }
        if message.droppedBefore > 0 && showSender {
            line += " (after \(message.droppedBefore) dropped)"
        }
        line += "\n"
        return line
    }

    private func jsonLine(_ message: Message) -> String {
        var line = "{\"topic\":"
        appendJSONString(message.topic, to: &line)
        line += ",\"payload\":"
        if let text = message.string {
            appendJSONString(text, to: &line)
        } else {
            line += "null"
        }
        line += ",\"payload_base64\":\""
        line += base64(message.payload)
        let sender = message.sender
        line += "\",\"sender\":{\"peer\":\(sender.peerID),\"pid\":\(sender.pid),\"uid\":\(sender.uid),\"gid\":\(sender.gid)}"
        if message.droppedBefore > 0 { line += ",\"dropped_before\":\(message.droppedBefore)" }
        line += "}\n"
        return line
    }
}

/// Lower-case hexadecimal digits of `bytes`.
func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
        out.append(digits[Int(byte >> 4)])
        out.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Standard base64 (RFC 4648, with padding) of `bytes`.
func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index + 3 <= bytes.count {
        let value = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
        for shift in [18, 12, 6, 0] { out.append(alphabet[Int(value >> UInt32(shift) & 0x3F)]) }
        index += 3
    }
    let rest = bytes.count - index
    if rest > 0 {
        let value = UInt32(bytes[index]) << 16 | (rest == 2 ? UInt32(bytes[index + 1]) << 8 : 0)
        out.append(alphabet[Int(value >> 18 & 0x3F)])
        out.append(alphabet[Int(value >> 12 & 0x3F)])
        out.append(rest == 2 ? alphabet[Int(value >> 6 & 0x3F)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
    }
    return String(decoding: out, as: UTF8.self)
}

/// Appends `text` as a JSON string literal (RFC 8259 escaping).
func appendJSONString(_ text: String, to line: inout String) {
    line += "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": line += "\\\""
        case "\\": line += "\\\\"
        case "\n": line += "\\n"
        case "\r": line += "\\r"
        case "\t": line += "\\t"
        case _ where scalar.value < 0x20:
            let digits = String(scalar.value, radix: 16)
            line += "\\u" + String(repeating: "0", count: 4 - digits.count) + digits
        default: line.unicodeScalars.append(scalar)
        }
    }
    line += "\""
}
