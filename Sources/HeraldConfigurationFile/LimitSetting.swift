import HeraldCore
import HeraldProtocol

/// The `[limits]` a configuration file may set, each the same as one heraldd flag of the
/// same name (a flag given on the command line overrides the file).
public enum LimitSetting: String, CaseIterable, Sendable {
    /// ``BrokerConfiguration/maxConnections`` (still held to the descriptor limit).
    case maxConnections = "max-connections"
    /// ``BrokerConfiguration/maxConnectionsPerUID``.
    case maxConnectionsPerUID = "max-connections-per-uid"
    /// ``BrokerConfiguration/maxSubscriptionsPerPeer``.
    case maxSubscriptions = "max-subscriptions"
    /// ``BrokerConfiguration/maxSubscriptionsPerUID``.
    case maxSubscriptionsPerUID = "max-subscriptions-per-uid"
    /// ``BrokerConfiguration/maxQueuedBytesPerUID`` (bytes).
    case maxQueuedBytesPerUID = "max-queued-bytes-per-uid"
    /// ``BrokerConfiguration/maxRetainedMessagesPerUID``.
    case maxRetainedPerUID = "max-retained-per-uid"
    /// ``BrokerConfiguration/maxRetainedBytesPerUID`` (bytes).
    case maxRetainedBytesPerUID = "max-retained-bytes-per-uid"
    /// ``BrokerConfiguration/maxPendingRequestsPerPeer``.
    case maxPendingRequests = "max-pending-requests"
    /// ``BrokerConfiguration/maxDescriptorsPerUID``.
    case maxDescriptorsPerUID = "max-fds-per-uid"
    /// ``BrokerConfiguration/maxDescriptorsHeld``.
    case maxDescriptorsHeld = "max-fds-held"
    /// ``BrokerConfiguration/maxHandshakingConnections``.
    case maxHandshaking = "max-handshaking"
    /// ``BrokerConfiguration/maxHandshakingConnectionsPerUID``.
    case maxHandshakingPerUID = "max-handshaking-per-uid"
    /// ``BrokerConfiguration/maxFrameSize`` (bytes).
    case maxFrameSize = "max-frame-size"
    /// ``BrokerConfiguration/maxTopicLength`` (bytes).
    case maxTopicLength = "max-topic-length"
    /// ``BrokerConfiguration/outputLimit`` (bytes).
    case outputLimit = "output-limit"
    /// ``BrokerConfiguration/partialInputBudget`` (bytes).
    case partialInputBudget = "partial-input-budget"
    /// ``BrokerConfiguration/frameTimeout`` (seconds).
    case frameTimeout = "frame-timeout"
    /// ``BrokerConfiguration/handshakeTimeout`` (seconds).
    case handshakeTimeout = "handshake-timeout"
    /// ``BrokerConfiguration/shutdownGrace`` (seconds).
    case shutdownGrace = "shutdown-grace"
    /// ``BrokerConfiguration/defaultSlowConsumerPolicy``: "drop", "disconnect" or "backpressure".
    case slowConsumer = "slow-consumer"

    /// A value read from the file, already checked.
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        /// A count or a number of bytes.
        case count(Int)
        /// A duration.
        case seconds(Double)
        /// A slow-consumer policy.
        case policy(SlowConsumerPolicy)

        public var description: String {
            switch self {
            case .count(let count): "\(count)"
            case .seconds(let seconds): "\(seconds) s"
            case .policy(let policy): "\(policy)"
            }
        }
    }

    private enum Kind {
        case count(ClosedRange<Int>)
        case bytes(ClosedRange<Int>)
        case seconds
        case slowConsumer
    }

    private var kind: Kind {
        switch self {
        case .maxConnections, .maxConnectionsPerUID, .maxSubscriptions, .maxSubscriptionsPerUID, .maxHandshaking,
            .maxHandshakingPerUID, .maxPendingRequests, .maxDescriptorsPerUID, .maxDescriptorsHeld:
            .count(1...Int(Int32.max))
        case .maxRetainedPerUID: .count(0...Int(Int32.max))
        case .maxRetainedBytesPerUID: .bytes(0...Int.max)
        case .maxTopicLength: .count(1...ProtocolLimits.maxTopicLengthCeiling)
        case .maxFrameSize: .bytes(256...ProtocolLimits.maxFrameSizeCeiling)
        case .outputLimit: .bytes(BrokerConfiguration.minimumOutputLimit...Int(Int32.max))
        case .maxQueuedBytesPerUID: .bytes(BrokerConfiguration.minimumOutputLimit...Int.max)
        case .partialInputBudget: .bytes(1...Int.max)
        case .frameTimeout, .handshakeTimeout, .shutdownGrace: .seconds
        case .slowConsumer: .slowConsumer
        }
    }

    /// Checks a value for this setting, from the file or from heraldd's flag of the same
    /// name: an integer for counts, an integer or a string such as "8M" for bytes, a number
    /// of seconds, a policy name.
    public func value(integer: Int?, double: Double?, string: String?) -> Result<Value, Problem> {
        switch kind {
        case .count(let range):
            guard let integer else { return .failure(.init("must be an integer")) }
            guard range.contains(integer) else { return .failure(.init("must be between \(range.lowerBound) and \(range.upperBound)")) }
            return .success(.count(integer))
        case .bytes(let range):
            guard let bytes = integer ?? string.flatMap({ ByteCount($0)?.value }) else {
                return .failure(.init("must be a byte count: an integer, or a string such as \"64K\" or \"8M\""))
            }
            guard range.contains(bytes) else { return .failure(.init("must be between \(range.lowerBound) and \(range.upperBound) bytes")) }
            return .success(.count(bytes))
        case .seconds:
            guard let seconds = double ?? integer.map(Double.init), seconds > 0, seconds.isFinite else {
                return .failure(.init("must be a positive number of seconds"))
            }
            return .success(.seconds(seconds))
        case .slowConsumer:
            guard let string, let policy = SlowConsumerPolicy.allCases.first(where: { $0.description == string }) else {
                let names = SlowConsumerPolicy.allCases.map { "\"\($0)\"" }.joined(separator: ", ")
                return .failure(.init("must be one of \(names)"))
            }
            return .success(.policy(policy))
        }
    }

    /// Sets this limit in `configuration`.
    public func apply(_ value: Value, to configuration: inout BrokerConfiguration) {
        switch (self, value) {
        case (.maxConnections, .count(let count)): configuration.maxConnections = count
        case (.maxConnectionsPerUID, .count(let count)): configuration.maxConnectionsPerUID = count
        case (.maxSubscriptions, .count(let count)): configuration.maxSubscriptionsPerPeer = count
        case (.maxSubscriptionsPerUID, .count(let count)): configuration.maxSubscriptionsPerUID = count
        case (.maxQueuedBytesPerUID, .count(let count)): configuration.maxQueuedBytesPerUID = count
        case (.maxRetainedPerUID, .count(let count)): configuration.maxRetainedMessagesPerUID = count
        case (.maxRetainedBytesPerUID, .count(let count)): configuration.maxRetainedBytesPerUID = count
        case (.maxPendingRequests, .count(let count)): configuration.maxPendingRequestsPerPeer = count
        case (.maxDescriptorsPerUID, .count(let count)): configuration.maxDescriptorsPerUID = count
        case (.maxDescriptorsHeld, .count(let count)): configuration.maxDescriptorsHeld = count
        case (.maxHandshaking, .count(let count)): configuration.maxHandshakingConnections = count
        case (.maxHandshakingPerUID, .count(let count)): configuration.maxHandshakingConnectionsPerUID = count
        case (.maxFrameSize, .count(let count)): configuration.maxFrameSize = count
        case (.maxTopicLength, .count(let count)): configuration.maxTopicLength = count
        case (.outputLimit, .count(let count)): configuration.outputLimit = count
        case (.partialInputBudget, .count(let count)): configuration.partialInputBudget = count
        case (.frameTimeout, .seconds(let seconds)): configuration.frameTimeout = seconds
        case (.handshakeTimeout, .seconds(let seconds)): configuration.handshakeTimeout = seconds
        case (.shutdownGrace, .seconds(let seconds)): configuration.shutdownGrace = seconds
        case (.slowConsumer, .policy(let policy)): configuration.defaultSlowConsumerPolicy = policy
        default: preconditionFailure("\(rawValue) cannot hold \(value)")
        }
    }

    /// What is wrong with a value ("must be …"), before it has a line or a flag name.
    public struct Problem: Error {
        /// The explanation, to follow the setting's name.
        public let message: String
        init(_ message: String) { self.message = message }
    }
}
