#if canImport(Glibc)
import Glibc
#endif
import HeraldProtocol

/// How a ``Bus`` connects and how much it buffers.
public struct BusOptions: Sendable {
    /// A name for this client in the broker's logs and introspection (at most 255 UTF-8
    /// bytes are sent). Defaults to ``defaultClientName``.
    public var clientName: String
    /// What the broker does when this client does not read its messages fast enough.
    public var slowConsumerPolicy: SlowConsumerPolicy
    /// Bytes the broker may queue for this client before the slow-consumer policy applies;
    /// nil takes the broker's default. The broker may lower it; ``BrokerInfo/outputLimit``
    /// reports the value in force.
    public var outputLimit: Int?
    /// Bound, in bytes, on published frames not yet written to the socket. A publish that
    /// would exceed it suspends until the I/O thread has written enough; nothing is ever
    /// dropped. (Up to about twice this much can be in flight: one buffer being written, one
    /// being filled.)
    public var publishBufferLimit: Int
    /// Bound, in bytes, on messages delivered to one subscription that its consumer has not
    /// taken yet. When a subscription exceeds it, the client stops reading the socket until
    /// the consumer catches up, so the broker's slow-consumer policy decides what happens;
    /// the client itself never drops a message. While reading is paused the connection's
    /// other subscriptions receive nothing either, but requests still complete: reading
    /// goes on while a reply to `subscribe`, `cancel` or `flush()` is awaited (what comes
    /// before a reply is bounded by the broker's output limit).
    public var subscriptionBufferLimit: Int
    /// How long ``Bus/connect(to:options:)`` waits for the broker's WELCOME.
    public var connectTimeout: Duration
    /// How the bus reconnects when the broker goes away; nil ends the bus instead (its
    /// subscriptions end with the error, as a broker loss did before reconnection existed).
    public var reconnect: ReconnectPolicy?
    /// Which broker processes the bus talks to, checked on every connect and reconnect
    /// before HELLO is sent. Default: one running as this user or as root.
    public var brokerTrust: BrokerTrust
    /// Whether other peers may send this bus messages by its peer id (``Bus/send(to:_:_:)``),
    /// received through ``Bus/directMessages()``. Off by default: a bus that never reads
    /// them must not accept them (a sender to it gets ``HeraldError/directNotAccepted(_:)``).
    public var acceptsDirectMessages: Bool
    /// What the broker publishes for this bus if it goes away without ``Bus/close()``; see ``LastWill``.
    public var lastWill: LastWill?
    /// Whether this bus passes and receives file descriptors (``Bus/publish(_:_:fileDescriptors:)``,
    /// ``Message/fileDescriptors``, payloads sent as sealed memfds): the protocol's `fds`
    /// capability. On by default. Off, the bus cannot pass any, the broker withholds those
    /// others pass and says so in each message (``Message/withheldFileDescriptors``), and a
    /// direct message or answer with descriptors to this bus is refused at its sender. Turn it
    /// off for a service that must not let other processes put descriptors in its table.
    public var acceptsFileDescriptors: Bool
    /// Payloads of at least this many bytes are published as a sealed memfd rather than
    /// copied through the socket (see ``SealedPayload``): their cost no longer grows with
    /// their size, and they may exceed the broker's maximum frame size. Only for publishes
    /// that are not retained, to a broker that supports descriptors. nil sends every payload
    /// inline (one larger than the maximum frame size is then refused). Subscribers that do
    /// not accept descriptors receive such a message without its payload, flagged
    /// (``Message/payloadRejection``).
    public var sealedPayloadThreshold: Int?

    /// Creates options; every parameter has a default suited to ordinary use.
    public init(
        clientName: String = BusOptions.defaultClientName,
        slowConsumerPolicy: SlowConsumerPolicy = .drop,
        outputLimit: Int? = nil,
        publishBufferLimit: Int = 8 << 20,
        subscriptionBufferLimit: Int = 8 << 20,
        connectTimeout: Duration = .seconds(5),
        reconnect: ReconnectPolicy? = ReconnectPolicy(),
        brokerTrust: BrokerTrust = .ownUserOrRoot,
        acceptsDirectMessages: Bool = false,
        lastWill: LastWill? = nil,
        acceptsFileDescriptors: Bool = true,
        sealedPayloadThreshold: Int? = BusOptions.defaultSealedPayloadThreshold
    ) {
        self.clientName = clientName
        self.slowConsumerPolicy = slowConsumerPolicy
        self.outputLimit = outputLimit
        self.publishBufferLimit = publishBufferLimit
        self.subscriptionBufferLimit = subscriptionBufferLimit
        self.connectTimeout = connectTimeout
        self.reconnect = reconnect
        self.brokerTrust = brokerTrust
        self.acceptsDirectMessages = acceptsDirectMessages
        self.lastWill = lastWill
        self.acceptsFileDescriptors = acceptsFileDescriptors
        self.sealedPayloadThreshold = sealedPayloadThreshold
    }

    /// The default ``sealedPayloadThreshold``: where a sealed memfd starts to beat copying
    /// the bytes through the broker (measured with `herald bench W9`, see the README).
    public static let defaultSealedPayloadThreshold = 256 << 10

    /// The process name from `/proc/self/comm`, or `herald-client` if it cannot be read.
    public static var defaultClientName: String {
        let fd = open("/proc/self/comm", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return "herald-client" }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 64)
        let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return "herald-client" }
        var name = bytes[..<count]
        while let last = name.last, last == UInt8(ascii: "\n") || last == 0 { name = name.dropLast() }
        guard !name.isEmpty, let text = String(validating: name, as: UTF8.self) else { return "herald-client" }
        return text
    }
}
