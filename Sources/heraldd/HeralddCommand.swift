import ArgumentParser
import HeraldCore
import HeraldServer
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
            Under systemd it adopts the sockets passed with LISTEN_FDS (socket activation), and with \
            Type=notify reports READY=1, STATUS=, WATCHDOG=1 (when WatchdogSec= is set), RELOADING=1 on \
            SIGHUP and STOPPING=1. See examples/systemd.
            """,
        version: HeraldVersion.string)

    @Option(name: .long, help: ArgumentHelp("Address to listen on: '@name' (abstract) or a path. Repeat to listen on several.", valueName: "address"))
    var address: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: ArgumentHelp("Bytes the broker queues for one subscriber before its slow-consumer policy applies (e.g. 8M).", valueName: "bytes"))
    var outputLimit = ByteCount(argument: "8M")!

    @Option(name: .long, help: ArgumentHelp("Slow-consumer policy for clients that leave it to the broker: drop, disconnect or backpressure.", valueName: "policy"))
    var slowConsumer = SlowConsumerArgument(.drop)

    @Option(name: .long, help: ArgumentHelp("Largest frame accepted, header included (e.g. 1M).", valueName: "bytes"))
    var maxFrameSize = ByteCount(argument: "1M")!

    @Option(name: .long, help: "Longest topic or filter, in bytes.")
    var maxTopicLength = ProtocolLimits.defaultMaxTopicLength

    @Option(name: .long, help: "Most subscriptions per connection.")
    var maxSubscriptions = ProtocolLimits.defaultMaxSubscriptions

    @Option(name: .long, help: ArgumentHelp("Most simultaneous connections (default: what the file-descriptor limit allows, at most 65536).", valueName: "count"))
    var maxConnections: Int?

    @Option(name: .customLong("max-connections-per-uid"), help: ArgumentHelp("Most connections one user id may have open.", valueName: "count"))
    var maxConnectionsPerUID = BrokerConfiguration().maxConnectionsPerUID

    @Option(name: .customLong("max-subscriptions-per-uid"), help: ArgumentHelp("Most subscriptions one user id may hold over all its connections.", valueName: "count"))
    var maxSubscriptionsPerUID = BrokerConfiguration().maxSubscriptionsPerUID

    @Option(name: .customLong("max-handshaking"), help: ArgumentHelp("Most connections that may be in the handshake (no WELCOME yet) at once.", valueName: "count"))
    var maxHandshaking = BrokerConfiguration().maxHandshakingConnections

    @Option(name: .customLong("max-handshaking-per-uid"), help: ArgumentHelp("Most connections one user id may have in the handshake at once.", valueName: "count"))
    var maxHandshakingPerUID = BrokerConfiguration().maxHandshakingConnectionsPerUID

    @Option(name: .long, help: ArgumentHelp("Seconds a frame may take to arrive completely after its first byte.", valueName: "seconds"))
    var frameTimeout = BrokerConfiguration().frameTimeout

    @Option(name: .long, help: ArgumentHelp("Bytes of partially received frames held for all connections together (e.g. 64M).", valueName: "bytes"))
    var partialInputBudget = ByteCount(argument: "64M")!

    @Option(name: .long, help: ArgumentHelp("Exit (0, after STOPPING=1) once no client has been connected for this long: for socket activation, where the next connection starts a new broker.", valueName: "seconds"))
    var exitWhenIdle: Double?

    @Option(name: .long, help: ArgumentHelp("Also admit this user id (the broker's own uid and root are always admitted). Repeatable.", valueName: "uid"))
    var allowUID: [UInt32] = []

    func validate() throws {
        guard maxFrameSize.value >= 256, maxFrameSize.value <= ProtocolLimits.maxFrameSizeCeiling else {
            throw ValidationError("--max-frame-size must be between 256 bytes and \(ProtocolLimits.maxFrameSizeCeiling >> 20) MiB")
        }
        guard outputLimit.value >= BrokerConfiguration.minimumOutputLimit else {
            throw ValidationError("--output-limit must be at least \(BrokerConfiguration.minimumOutputLimit) bytes")
        }
        guard (1...ProtocolLimits.maxTopicLengthCeiling).contains(maxTopicLength) else {
            throw ValidationError("--max-topic-length must be between 1 and \(ProtocolLimits.maxTopicLengthCeiling)")
        }
        guard maxSubscriptions > 0, maxConnections ?? 1 > 0, maxHandshaking > 0, maxHandshakingPerUID > 0,
            maxConnectionsPerUID > 0, maxSubscriptionsPerUID > 0
        else {
            throw ValidationError("--max-subscriptions, --max-connections, --max-handshaking and --max-handshaking-per-uid must be positive")
        }
        guard frameTimeout > 0, frameTimeout.isFinite else { throw ValidationError("--frame-timeout must be a positive number of seconds") }
        if let exitWhenIdle, !(exitWhenIdle > 0 && exitWhenIdle.isFinite) {
            throw ValidationError("--exit-when-idle must be a positive number of seconds")
        }
        guard partialInputBudget.value >= maxFrameSize.value else {
            throw ValidationError("--partial-input-budget must hold at least one frame of --max-frame-size bytes")
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
        configuration.defaultSlowConsumerPolicy = slowConsumer.policy
        configuration.maxFrameSize = maxFrameSize.value
        configuration.maxTopicLength = maxTopicLength
        configuration.maxSubscriptionsPerPeer = maxSubscriptions
        configuration.maxConnections = connectionLimit(logger: logger)
        configuration.maxConnectionsPerUID = maxConnectionsPerUID
        configuration.maxSubscriptionsPerUID = maxSubscriptionsPerUID
        configuration.maxHandshakingConnections = maxHandshaking
        configuration.maxHandshakingConnectionsPerUID = maxHandshakingPerUID
        configuration.frameTimeout = frameTimeout
        configuration.partialInputBudget = partialInputBudget.value
        configuration.extraAllowedUIDs = Set(allowUID)

        // Sockets passed by a service manager come first; --address adds to them. Without
        // either, the default address.
        var listeners: [Listener]
        do {
            listeners = try SocketActivation.passedListeners(logger: logger)
        } catch {
            logger.critical("cannot start: \(error)")
            throw ExitCode(1)
        }
        let activated = !listeners.isEmpty
        let addresses = address.isEmpty ? (activated ? [] : [BusAddress.resolve(nil)]) : address.map(BusAddress.init)
        if activated && !addresses.isEmpty {
            logger.notice("socket-activated, and listening on --address too", metadata: ["addresses": "\(addresses.map(\.description))"])
        }
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
        let listening = listeners.map(\.address.description).joined(separator: " ")
        let notifier = ServiceNotifier(logger: logger)
        server.exitWhenIdle = exitWhenIdle
        server.tickInterval = notifier.tickInterval
        server.onReady = {
            logger.notice("listening", metadata: ["address": "\(listening)", "pid": "\(getpid())", "version": "\(HeraldVersion.string)"])
            notifier.ready(listening: listening)
        }
        server.onTick = { now in notifier.tick(now: now, statistics: core.statistics) }
        server.onReload = { notifier.reload() }
        server.onStopping = { notifier.stopping() }
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

extension HeralddCommand {
    /// Raises the soft descriptor limit to the hard one and returns the connection limit it
    /// allows (or `--max-connections`, if lower), logging both so an operator sees which
    /// limit is in force.
    func connectionLimit(logger: Logger) -> Int {
        guard let limit = DescriptorBudget.raiseSoftLimit() else {
            logger.warning("cannot read the file-descriptor limit; using the connection limit as given")
            return maxConnections ?? BrokerConfiguration.defaultMaxConnections
        }
        let budget = DescriptorBudget.maxConnections(forDescriptorLimit: limit.soft)
        let effective = min(maxConnections ?? BrokerConfiguration.defaultMaxConnections, budget)
        logger.notice(
            "file-descriptor limit",
            metadata: ["soft": "\(limit.soft)", "hard": "\(limit.hard)", "soft_at_start": "\(limit.softBefore)",
                "max_connections": "\(effective)", "reserved": "\(DescriptorBudget.reserve)"])
        if let requested = maxConnections, requested > budget {
            logger.warning(
                "--max-connections exceeds what the file-descriptor limit allows; using the lower value",
                metadata: ["requested": "\(requested)", "using": "\(effective)", "descriptor_limit": "\(limit.soft)"])
        }
        return effective
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
