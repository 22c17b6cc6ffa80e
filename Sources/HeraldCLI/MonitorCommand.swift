import ArgumentParser
import CHeraldSys
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// `herald monitor [FILTER...]`: all traffic on the bus, like `busctl monitor`.
///
/// A protocol client of its own (this tool's one place below the library): monitor
/// subscriptions and their MONITORED frames are a tool's business, not an application's.
struct MonitorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show the traffic on the bus: messages, requests, replies and direct messages.",
        discussion: """
            One line per event: 'message' (published; 'retained' for a topic's current value at the \
            start), 'request' (sent to a responder), 'reply' (with its call id and status, tying it to its \
            request), 'direct' (sent to one peer), each with the topic, the payload (text, or hex) and who \
            sent it to whom. FILTER defaults to everything: '#' and '$SYS/#'. Allowed to root and the \
            broker's own user only. Runs until interrupted, or --count events.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "Topic filters to watch (default: '#' and '$SYS/#').")
    var filters: [String] = []

    @Flag(help: "One JSON object per line.")
    var json = false

    @Option(help: ArgumentHelp("Exit after this many events.", valueName: "N"))
    var count: Int?

    func run() async throws {
        let address = BusAddress.resolve(connection.address)
        let watched = filters.isEmpty ? ["#", "$SYS/#"] : filters
        let client: MonitorClient
        do {
            client = try MonitorClient(address: address, trusted: Set(connection.trustUID + [getuid(), 0]))
            try client.start(watching: watched)
        } catch {
            throw Failure.report(error)
        }
        var shown = 0
        while count.map({ shown < $0 }) ?? true {
            let frame: Frame
            do {
                guard let next = try client.next() else { throw HeraldError.connectionClosed(reason: "the broker closed the connection") }
                frame = next
            } catch let error as HeraldError {
                throw Failure.report(error)
            }
            guard let line = MonitorLine(frame: frame, json: json)?.text else { continue }
            Output(fd: 1).write(line)
            shown += 1
        }
    }
}

/// A connection that adds monitor subscriptions and reads frames, blocking.
final class MonitorClient {
    private let fd: Int32
    private var buffer: [UInt8] = []

    /// Connects to `address`; the broker must run as one of `trusted` (as the library checks).
    init(address: BusAddress, trusted: Set<UInt32>) throws(HeraldError) {
        fd = herald_unix_stream_socket(0)
        guard fd >= 0 else { throw .brokerUnreachable(address: address.description, reason: "cannot create a socket") }
        let connected = address.name.withCString { herald_unix_connect(fd, $0, strlen($0), address.isAbstract ? 1 : 0) }
        guard connected == 0 else {
            close(fd)
            throw .brokerUnreachable(address: address.description, reason: "nothing accepts connections there")
        }
        var broker = herald_peer_credentials()
        guard herald_peer_credentials_of(fd, &broker) == 0, trusted.contains(broker.uid) else {
            close(fd)
            throw .untrustedBroker(uid: broker.uid, pid: broker.pid)
        }
    }

    deinit { close(fd) }

    /// HELLO, then one monitor SUBSCRIBE per filter; returns once all are confirmed.
    func start(watching filters: [String]) throws(HeraldError) {
        write(.hello(Hello(capabilities: Capabilities.retained | Capabilities.monitor, clientName: "herald monitor")))
        guard case .welcome(let welcome)? = try next() else { throw .handshakeFailed("no WELCOME from the broker") }
        guard UInt32(welcome.capabilities) & Capabilities.monitor != 0 else {
            throw .handshakeFailed("this broker does not support monitoring (it did not confirm the 'monitor' capability)")
        }
        for (index, filter) in filters.enumerated() {
            let id = UInt32(index + 1)
            write(.subscribe(Subscribe(requestID: id, subscriptionID: id, filter: filter, monitor: true)))
            switch try next() {
            case .ok(id)?: continue
            case .error(let error)?: throw HeraldError.fromBroker(error, filter: filter)
            default: throw .connectionLost("unexpected answer to a monitor subscription")
            }
        }
    }

    /// The next frame (nil at end of stream), blocking.
    func next() throws(HeraldError) -> Frame? {
        while true {
            if let (frame, length) = try? FrameDecoder.decode(buffer) {
                buffer.removeFirst(length)
                if case .error(let error) = frame, error.isFatal { throw HeraldError.fromBroker(error) }
                if case .ping(let token) = frame {
                    write(.pong(token: token))
                    continue
                }
                return frame
            }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return nil }
            buffer += chunk[..<n]
        }
    }

    private func write(_ frame: Frame) {
        let bytes = FrameEncoder.encode(frame)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}

/// One monitored event as a line of text or JSON.
struct MonitorLine {
    let text: String

    init?(frame: Frame, json: Bool) {
        let kind: String
        let senderID: UInt64
        let sender: PeerCredentials
        var target: UInt64?
        var callID: UInt32?
        var status: UInt32?
        let topic: [UInt8]
        let payload: [UInt8]
        switch frame {
        case .message(let delivery):
            (kind, senderID, sender, topic, payload) = ("message", delivery.senderID, delivery.sender, delivery.topic, delivery.payload)
        case .retained(let retained):
            (kind, senderID, sender, topic, payload) = ("retained", retained.senderID, retained.sender, retained.topic, retained.payload)
        case .monitored(let monitored):
            switch monitored.kind {
            case .request: kind = "request"
            case .reply: kind = "reply"
            case .direct: kind = "direct"
            }
            (senderID, sender, topic, payload, target) = (monitored.senderID, monitored.sender, monitored.topic, monitored.payload, monitored.target)
            if monitored.kind != .direct { callID = monitored.callID }
            if monitored.kind == .reply { status = monitored.status }
        default:
            return nil
        }
        let topicText = String(decoding: topic, as: UTF8.self)
        let payloadText = String(validating: payload, as: UTF8.self)
        if json {
            var line = "{\"kind\":\"\(kind)\",\"topic\":"
            appendJSONString(topicText, to: &line)
            line += ",\"payload\":"
            if let payloadText { appendJSONString(payloadText, to: &line) } else { line += "null" }
            line += ",\"payload_base64\":\"\(base64(payload))\",\"sender\":{\"peer\":\(senderID),\"pid\":\(sender.pid),\"uid\":\(sender.uid),\"gid\":\(sender.gid)}"
            if let target { line += ",\"target\":\(target)" }
            if let callID { line += ",\"call\":\(callID)" }
            if let status { line += ",\"status\":\(status)" }
            text = line + "}\n"
        } else {
            var line = kind.padding(toLength: 8, withPad: " ", startingAt: 0)
            if kind == "reply" {
                line += "call \(callID ?? 0)" + (status == 0 ? "" : " failed (\(status ?? 0))")
            } else {
                line += topicText
                if let callID { line += " (call \(callID))" }
            }
            line += " " + (payloadText ?? "0x" + hex(payload))
            line += "  [peer \(senderID) pid \(sender.pid) uid \(sender.uid)" + (target.map { " -> peer \($0)" } ?? "") + "]\n"
            text = line
        }
    }
}
