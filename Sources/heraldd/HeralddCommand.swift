import ArgumentParser
import HeraldConfigurationFile
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

    @Option(name: .long, help: ArgumentHelp("Configuration file (TOML): who may connect, who may publish and subscribe to what, limits. Flags override it; SIGHUP reloads it.", valueName: "file"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Check a configuration file, print what it allows, and exit (non-zero, with file:line messages, if it has errors).", valueName: "file"))
    var checkConfig: String?

    @Option(name: .long, help: ArgumentHelp("Bytes the broker queues for one subscriber before its slow-consumer policy applies (default: 8M).", valueName: "bytes"))
    var outputLimit: ByteCount?

    @Option(name: .long, help: ArgumentHelp("Policy for subscribers that leave it to the broker (default: drop).", valueName: "policy"))
    var slowConsumer: SlowConsumerArgument?

    @Option(name: .long, help: ArgumentHelp("Largest frame accepted, header included (default: 1M).", valueName: "bytes"))
    var maxFrameSize: ByteCount?

    @Option(name: .long, help: ArgumentHelp("Longest topic or filter, in bytes (default: \(ProtocolLimits.defaultMaxTopicLength)).", valueName: "bytes"))
    var maxTopicLength: Int?

    @Option(name: .long, help: ArgumentHelp("Most subscriptions per connection (default: \(ProtocolLimits.defaultMaxSubscriptions)).", valueName: "count"))
    var maxSubscriptions: Int?

    @Option(name: .long, help: ArgumentHelp("Most simultaneous connections (default: what the file-descriptor limit allows, at most 65536).", valueName: "count"))
    var maxConnections: Int?

    @Option(name: .customLong("max-connections-per-uid"), help: ArgumentHelp("Most connections one user id may have open (default: \(BrokerConfiguration().maxConnectionsPerUID)).", valueName: "count"))
    var maxConnectionsPerUID: Int?

    @Option(name: .customLong("max-subscriptions-per-uid"), help: ArgumentHelp("Most subscriptions one user id may hold over all its connections (default: \(BrokerConfiguration().maxSubscriptionsPerUID)).", valueName: "count"))
    var maxSubscriptionsPerUID: Int?

    @Option(name: .customLong("max-queued-bytes-per-uid"), help: ArgumentHelp("Bytes queued for one user id's subscribers together; past it, those that are behind are handled by their slow-consumer policy (default: 256M).", valueName: "bytes"))
    var maxQueuedBytesPerUID: ByteCount?

    @Option(name: .customLong("max-retained-per-uid"), help: ArgumentHelp("Most retained messages one user id may hold; 0 lets it retain none (default: \(BrokerConfiguration().maxRetainedMessagesPerUID)).", valueName: "count"))
    var maxRetainedPerUID: Int?

    @Option(name: .customLong("max-retained-bytes-per-uid"), help: ArgumentHelp("Bytes of retained messages (topics and payloads) one user id may hold (default: 64M).", valueName: "bytes"))
    var maxRetainedBytesPerUID: ByteCount?

    @Option(name: .customLong("max-handshaking"), help: ArgumentHelp("Most connections that may be in the handshake (no WELCOME yet) at once (default: \(BrokerConfiguration().maxHandshakingConnections)).", valueName: "count"))
    var maxHandshaking: Int?

    @Option(name: .customLong("max-handshaking-per-uid"), help: ArgumentHelp("Most connections one user id may have in the handshake at once (default: \(BrokerConfiguration().maxHandshakingConnectionsPerUID)).", valueName: "count"))
    var maxHandshakingPerUID: Int?

    @Option(name: .customLong("max-fds-per-uid"), help: ArgumentHelp("Most passed file descriptors the broker holds for one uid's messages until their receivers take them (default: \(BrokerConfiguration().maxDescriptorsPerUID)).", valueName: "count"))
    var maxDescriptorsPerUID: Int?

    @Option(name: .customLong("max-fds-held"), help: ArgumentHelp("Most passed file descriptors the broker holds in all; at most a quarter of its descriptor limit (default: \(BrokerConfiguration().maxDescriptorsHeld)).", valueName: "count"))
    var maxDescriptorsHeld: Int?

    @Option(name: .customLong("max-pending-requests"), help: ArgumentHelp("Most requests one connection may have waiting for a reply (default: \(BrokerConfiguration().maxPendingRequestsPerPeer)).", valueName: "count"))
    var maxPendingRequests: Int?

    @Option(name: .long, help: ArgumentHelp("Seconds a frame may take to arrive completely after its first byte (default: \(Int(BrokerConfiguration().frameTimeout))).", valueName: "seconds"))
    var frameTimeout: Double?

    @Option(name: .long, help: ArgumentHelp("Seconds a stopping broker keeps handling what clients still send after its GOODBYE, and flushing their output, before it exits regardless (default: \(Int(BrokerConfiguration().shutdownGrace))).", valueName: "seconds"))
    var shutdownGrace: Double?

    @Option(name: .long, help: ArgumentHelp("Bytes of partially received frames held for all connections together (default: 64M).", valueName: "bytes"))
    var partialInputBudget: ByteCount?

    @Option(name: .long, help: ArgumentHelp("Exit (0, after STOPPING=1) once no client has been connected for this long: for socket activation, where the next connection starts a new broker.", valueName: "seconds"))
    var exitWhenIdle: Double?

    @Option(name: .customLong("state-file"), help: ArgumentHelp("Keep the retained messages in this file across restarts (replaced atomically when they change, at most once a second, and at stop).", valueName: "path"))
    var stateFile: String?

    @Flag(name: .customLong("fd-store"), help: ArgumentHelp("Keep the retained messages in the service manager's file-descriptor store (a sealed memfd) across restarts. On by default when systemd says the unit has a store ($FDSTORE, systemd 254+); give it with FileDescriptorStoreMax= on older systemd."))
    var fdStore = false

    @Option(name: .long, help: ArgumentHelp("Also admit this user id (the broker's own uid and root are always admitted). Repeatable.", valueName: "uid"))
    var allowUID: [UInt32] = []

    func validate() throws {
        _ = try limitFlags()
        if let exitWhenIdle, !(exitWhenIdle > 0 && exitWhenIdle.isFinite) {
            throw ValidationError("--exit-when-idle must be a positive number of seconds")
        }
    }

    /// The limits given as flags, each checked exactly as the configuration file's
    /// `[limits]` entry of the same name is (``LimitSetting``).
    func limitFlags() throws -> [(LimitSetting, LimitSetting.Value)] {
        let given: [(LimitSetting, integer: Int?, double: Double?, string: String?)] = [
            (.outputLimit, outputLimit?.value, nil, nil),
            (.slowConsumer, nil, nil, slowConsumer?.policy.description),
            (.maxFrameSize, maxFrameSize?.value, nil, nil),
            (.maxTopicLength, maxTopicLength, nil, nil),
            (.maxSubscriptions, maxSubscriptions, nil, nil),
            (.maxConnections, maxConnections, nil, nil),
            (.maxConnectionsPerUID, maxConnectionsPerUID, nil, nil),
            (.maxSubscriptionsPerUID, maxSubscriptionsPerUID, nil, nil),
            (.maxQueuedBytesPerUID, maxQueuedBytesPerUID?.value, nil, nil),
            (.maxRetainedPerUID, maxRetainedPerUID, nil, nil),
            (.maxRetainedBytesPerUID, maxRetainedBytesPerUID?.value, nil, nil),
            (.maxHandshaking, maxHandshaking, nil, nil),
            (.maxPendingRequests, maxPendingRequests, nil, nil),
            (.maxDescriptorsPerUID, maxDescriptorsPerUID, nil, nil),
            (.maxDescriptorsHeld, maxDescriptorsHeld, nil, nil),
            (.maxHandshakingPerUID, maxHandshakingPerUID, nil, nil),
            (.frameTimeout, nil, frameTimeout, nil),
            (.partialInputBudget, partialInputBudget?.value, nil, nil),
            (.shutdownGrace, nil, shutdownGrace, nil),
        ]
        return try given.compactMap { setting, integer, double, string in
            guard integer != nil || double != nil || string != nil else { return nil }
            switch setting.value(integer: integer, double: double, string: string) {
            case .success(let value): return (setting, value)
            case .failure(let problem): throw ValidationError("--\(setting.rawValue) \(problem.message)")
            }
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
        if let checkConfig { try check(checkConfig) }

        let descriptors = DescriptorBudget.raiseSoftLimit()
        let descriptorBudget = descriptors?.soft
        let configuration: BrokerConfiguration
        do {
            configuration = try effectiveConfiguration(file: config.map { try ConfigurationFile.load(path: $0) },
                descriptorBudget: descriptorBudget, logger: logger)
        } catch {
            logger.critical("cannot start: invalid configuration\n\(error)")
            throw ExitCode(1)
        }
        if let descriptors {
            // Both limits, so an operator sees which one is in force.
            logger.notice(
                "file-descriptor limit",
                metadata: ["soft": "\(descriptors.soft)", "hard": "\(descriptors.hard)", "soft_at_start": "\(descriptors.softBefore)",
                    "max_connections": "\(configuration.maxConnections)", "reserved": "\(DescriptorBudget.reserve)"])
        } else {
            logger.warning("cannot read the file-descriptor limit; using the connection limit as given")
        }

        // Sockets passed by a service manager come first; --address adds to them. Without
        // either, the default address.
        var listeners: [Listener]
        let retainedState: Int32?
        do {
            let passed = try SocketActivation.passedDescriptors(logger: logger)
            listeners = passed.listeners
            retainedState = passed.retainedState
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
            configuration: configuration, logger: logger, brokerPID: UInt32(getpid()), brokerUID: UInt32(getuid()),
            brokerGID: UInt32(getgid()))
        let server: EpollServer
        do {
            server = try EpollServer(core: core, listeners: listeners, logger: logger)
        } catch {
            logger.critical("cannot start the event loop: \(error)")
            throw ExitCode(1)
        }
        let listening = listeners.map(\.address.description).joined(separator: " ")
        let notifier = ServiceNotifier(logger: logger)
        let persistence = RetainedPersistence(
            stateFile: stateFile, descriptorStore: fdStore || ServiceNotifier.descriptorStoreSize > 0, notifier: notifier,
            logger: logger)
        persistence.restore(into: core, storedDescriptor: retainedState)
        server.exitWhenIdle = exitWhenIdle
        server.tickInterval = notifier.tickInterval
        server.onReady = {
            logger.notice("listening", metadata: ["address": "\(listening)", "pid": "\(getpid())", "version": "\(HeraldVersion.string)"])
            notifier.ready(listening: listening)
        }
        server.onTick = { now in
            notifier.tick(now: now, statistics: core.statistics)
            persistence.saveIfChanged(core)
        }
        server.onReload = {
            notifier.reload {
                reload(core: core, descriptorBudget: descriptorBudget, logger: logger)
            }
        }
        server.onStopping = { notifier.stopping() }
        let exit = server.run()
        // Every retained message the broker received, for the next one.
        persistence.saveIfChanged(core)
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
    /// `--check-config FILE`: prints what the file allows and exits 0, or its problems and exits 1.
    func check(_ path: String) throws -> Never {
        do {
            let file = try ConfigurationFile.load(path: path)
            print(file.summary())
            throw ExitCode.success
        } catch let error as ConfigurationFileError {
            let text = Array("\(error)\nheraldd: \(path) has \(error.problems.count) error(s)\n".utf8)
            _ = text.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
            throw ExitCode(1)
        }
    }

    /// The configuration in force: the defaults, then the file, then the flags given on the
    /// command line, and the connection limit held to what the descriptor limit allows.
    func effectiveConfiguration(file: ConfigurationFile?, descriptorBudget: Int?, logger: Logger) throws -> BrokerConfiguration {
        var configuration = BrokerConfiguration()
        file?.apply(to: &configuration)
        for (setting, value) in try limitFlags() { setting.apply(value, to: &configuration) }
        configuration.extraAllowedUIDs = Set(allowUID)
        guard configuration.partialInputBudget >= configuration.maxFrameSize else {
            throw ValidationError("the partial-input budget (\(configuration.partialInputBudget) bytes) must hold at least one frame of the maximum frame size (\(configuration.maxFrameSize) bytes)")
        }
        // `descriptorBudget` is the soft descriptor limit: connections and passed descriptors share it.
        if let descriptorBudget {
            let split = DescriptorBudget.split(descriptorLimit: descriptorBudget, heldRequested: configuration.maxDescriptorsHeld)
            if configuration.maxDescriptorsHeld > split.maxHeld {
                if configuration.maxDescriptorsHeld != BrokerConfiguration().maxDescriptorsHeld {
                    logger.warning(
                        "max-fds-held exceeds what the file-descriptor limit leaves; using the lower value",
                        metadata: ["requested": "\(configuration.maxDescriptorsHeld)", "using": "\(split.maxHeld)"])
                }
                configuration.maxDescriptorsHeld = split.maxHeld
            }
            if configuration.maxConnections > split.maxConnections {
                if configuration.maxConnections != BrokerConfiguration.defaultMaxConnections {
                    logger.warning(
                        "max-connections exceeds what the file-descriptor limit allows; using the lower value",
                        metadata: ["requested": "\(configuration.maxConnections)", "using": "\(split.maxConnections)"])
                }
                configuration.maxConnections = split.maxConnections
            }
        }
        return configuration
    }

    /// SIGHUP: reads the configuration file again and applies it, or keeps the one in force
    /// if the file has errors (each logged with its line).
    func reload(core: BrokerCore, descriptorBudget: Int?, logger: Logger) {
        guard let config else {
            logger.notice("SIGHUP: no --config file; nothing to reload")
            return
        }
        let configuration: BrokerConfiguration
        do {
            configuration = try effectiveConfiguration(file: try ConfigurationFile.load(path: config),
                descriptorBudget: descriptorBudget, logger: logger)
        } catch {
            logger.error("SIGHUP: the configuration file has errors; keeping the one in force\n\(error)")
            return
        }
        let summary = core.reload(configuration, now: MonotonicClock.now())
        logger.notice(
            "SIGHUP: configuration reloaded",
            metadata: ["file": "\(config)", "rules": "\(configuration.policy.rules.count)",
                "connections_closed": "\(summary.connectionsClosed)", "subscriptions_revoked": "\(summary.subscriptionsRevoked)"])
    }
}

extension ByteCount: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
