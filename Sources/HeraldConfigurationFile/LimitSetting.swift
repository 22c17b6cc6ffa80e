import HeraldCore
import HeraldProtocol

/// The `[limits]` a configuration file may set, each the same as one heraldd flag of the
/// same name (a flag given on the command line overrides the file).
public enum LimitSetting: String, CaseIterable, Sendable {
    case maxConnections = "max-connections"
    case maxConnectionsPerUID = "max-connections-per-uid"
    case maxSubscriptions = "max-subscriptions"
    case maxSubscriptionsPerUID = "max-subscriptions-per-uid"
    case maxQueuedBytesPerUID = "max-queued-bytes-per-uid"
    case maxHandshaking = "max-handshaking"
    case maxHandshakingPerUID = "max-handshaking-per-uid"
    case maxFrameSize = "max-frame-size"
    case maxTopicLength = "max-topic-length"
    case outputLimit = "output-limit"
    case partialInputBudget = "partial-input-budget"
    case frameTimeout = "frame-timeout"
    case handshakeTimeout = "handshake-timeout"
    case slowConsumer = "slow-consumer"

    /// A value read from the file, already checked.
    public enum Value: Sendable, Equatable, CustomStringConvertible {
        case count(Int)
        case seconds(Double)
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
            .maxHandshakingPerUID:
            .count(1...Int(Int32.max))
        case .maxTopicLength: .count(1...ProtocolLimits.maxTopicLengthCeiling)
        case .maxFrameSize: .bytes(256...ProtocolLimits.maxFrameSizeCeiling)
        case .outputLimit: .bytes(BrokerConfiguration.minimumOutputLimit...Int(Int32.max))
        case .maxQueuedBytesPerUID: .bytes(BrokerConfiguration.minimumOutputLimit...Int.max)
        case .partialInputBudget: .bytes(1...Int.max)
        case .frameTimeout, .handshakeTimeout: .seconds
        case .slowConsumer: .slowConsumer
        }
    }

    /// Checks a TOML value for this setting: an integer for counts, an integer or a string
    /// such as "8M" for bytes, a number of seconds, a policy name.
    func value(integer: Int?, double: Double?, string: String?) -> Result<Value, Problem> {
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
    func apply(_ value: Value, to configuration: inout BrokerConfiguration) {
        switch (self, value) {
        case (.maxConnections, .count(let count)): configuration.maxConnections = count
        case (.maxConnectionsPerUID, .count(let count)): configuration.maxConnectionsPerUID = count
        case (.maxSubscriptions, .count(let count)): configuration.maxSubscriptionsPerPeer = count
        case (.maxSubscriptionsPerUID, .count(let count)): configuration.maxSubscriptionsPerUID = count
        case (.maxQueuedBytesPerUID, .count(let count)): configuration.maxQueuedBytesPerUID = count
        case (.maxHandshaking, .count(let count)): configuration.maxHandshakingConnections = count
        case (.maxHandshakingPerUID, .count(let count)): configuration.maxHandshakingConnectionsPerUID = count
        case (.maxFrameSize, .count(let count)): configuration.maxFrameSize = count
        case (.maxTopicLength, .count(let count)): configuration.maxTopicLength = count
        case (.outputLimit, .count(let count)): configuration.outputLimit = count
        case (.partialInputBudget, .count(let count)): configuration.partialInputBudget = count
        case (.frameTimeout, .seconds(let seconds)): configuration.frameTimeout = seconds
        case (.handshakeTimeout, .seconds(let seconds)): configuration.handshakeTimeout = seconds
        case (.slowConsumer, .policy(let policy)): configuration.defaultSlowConsumerPolicy = policy
        default: preconditionFailure("\(rawValue) cannot hold \(value)")
        }
    }

    /// A problem with a value, before it has a line.
    struct Problem: Error {
        let message: String
        init(_ message: String) { self.message = message }
    }
}
