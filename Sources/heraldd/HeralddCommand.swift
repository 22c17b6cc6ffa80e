import ArgumentParser
import CSystemd
import HeraldBroker
import HeraldProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `heraldd`: the Herald broker daemon.
@main
struct HeralddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "heraldd",
        abstract: "The Herald message bus broker.",
        discussion: """
            Listens on a Unix socket (abstract '@name' or a filesystem path) and routes topic messages \
            between local processes. Without --address it listens on $HERALD_ADDRESS, or else on the \
            per-user default @herald/<uid>. Stops cleanly on SIGINT or SIGTERM, flushing queued messages. \
            Under systemd (Type=notify) it reports READY=1 once listening and STOPPING=1 when stopping.
            """,
        version: HeraldVersion.string)

    @Option(name: .long, help: ArgumentHelp("Address to listen on: '@name' (abstract) or a path. Repeat to listen on several.", valueName: "address"))
    var address: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: ArgumentHelp("Bytes the broker queues for one subscriber before its slow-consumer policy applies (e.g. 8M).", valueName: "bytes"))
    var outputLimit = ByteCount(argument: "8M")!

    @Option(name: .long, help: ArgumentHelp("Slow-consumer policy for clients that leave it to the broker: drop, disconnect or backpressure.", valueName: "policy"))
    var slowConsumer: SlowConsumerPolicy = .drop

    @Option(name: .long, help: ArgumentHelp("Largest frame accepted, header included (e.g. 1M).", valueName: "bytes"))
    var maxFrameSize = ByteCount(argument: "1M")!

    @Option(name: .long, help: "Longest topic or filter, in bytes.")
    var maxTopicLength = ProtocolLimits.defaultMaxTopicLength

    @Option(name: .long, help: "Most subscriptions per connection.")
    var maxSubscriptions = ProtocolLimits.defaultMaxSubscriptions

    @Option(name: .long, help: "Most simultaneous connections.")
    var maxConnections = 65_536

    @Option(name: .long, help: ArgumentHelp("Also admit this user id (the broker's own uid and root are always admitted). Repeatable.", valueName: "uid"))
    var allowUID: [UInt32] = []

    func validate() throws {
        guard maxFrameSize.value >= 256, maxFrameSize.value <= ProtocolLimits.maxFrameSizeCeiling else {
            throw ValidationError("--max-frame-size must be between 256 bytes and \(ProtocolLimits.maxFrameSizeCeiling >> 20) MiB")
        }
        guard outputLimit.value >= 4096 else { throw ValidationError("--output-limit must be at least 4096 bytes") }
        guard (1...ProtocolLimits.maxTopicLengthCeiling).contains(maxTopicLength) else {
            throw ValidationError("--max-topic-length must be between 1 and \(ProtocolLimits.maxTopicLengthCeiling)")
        }
        guard maxSubscriptions > 0, maxConnections > 0 else {
            throw ValidationError("--max-subscriptions and --max-connections must be positive")
        }
    }

    func run() throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "heraldd")

        var configuration = BrokerConfiguration()
        configuration.outputLimit = outputLimit.value
        configuration.defaultSlowConsumerPolicy = slowConsumer
        configuration.maxFrameSize = maxFrameSize.value
        configuration.maxTopicLength = maxTopicLength
        configuration.maxSubscriptionsPerPeer = maxSubscriptions
        configuration.maxConnections = maxConnections
        configuration.extraAllowedUIDs = Set(allowUID)

        let addresses = address.isEmpty ? [BusAddress.resolve(nil)] : address.map(BusAddress.init)
        var listeners: [Listener] = []
        do {
            for address in addresses { listeners.append(try Listener(address: address)) }
        } catch {
            logger.critical("cannot listen: \(error)")
            listeners.forEach { $0.close() }
            throw ExitCode(1)
        }

        let core = BrokerCore(
            configuration: configuration, logger: logger, brokerPID: UInt32(getpid()), brokerUID: UInt32(getuid()))
        let server: EpollServer
        do {
            server = try EpollServer(core: core, listeners: listeners, logger: logger)
        } catch {
            logger.critical("cannot start the event loop: \(error)")
            throw ExitCode(1)
        }
        let listening = addresses.map(\.description).joined(separator: " ")
        server.onReady = {
            logger.notice("listening", metadata: ["address": "\(listening)", "pid": "\(getpid())", "version": "\(HeraldVersion.string)"])
            _ = sd_notify(0, "READY=1\nSTATUS=listening on \(listening)")
        }
        server.onStopping = {
            _ = sd_notify(0, "STOPPING=1\nSTATUS=stopping")
        }
        let exit = server.run()
        let stats = core.statistics
        logger.notice(
            "stopped",
            metadata: [
                "reason": "\(exit)", "published": "\(stats.messagesPublished)", "delivered": "\(stats.messagesDelivered)",
                "dropped": "\(stats.messagesDropped)", "connections": "\(stats.connectionsAccepted)",
            ])
    }
}

extension SlowConsumerPolicy: ExpressibleByArgument {
    public init?(argument: String) {
        guard let policy = SlowConsumerPolicy.allCases.first(where: { $0.description == argument }) else { return nil }
        self = policy
    }

    public static var allValueStrings: [String] { allCases.map(\.description) }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
