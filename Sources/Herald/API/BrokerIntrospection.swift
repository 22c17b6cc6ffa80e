import HeraldProtocol

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// One connected peer, as the broker describes it (``Bus/peers()``, `herald peers`).
public struct PeerInfo: Sendable, Decodable, Equatable {
    /// One of its subscriptions.
    public struct SubscriptionInfo: Sendable, Decodable, Equatable {
        /// The client's id for it.
        public var id: UInt32
        /// Its topic filter.
        public var filter: String
        /// Whether it answers requests (``Bus/requests(on:)``) rather than receiving messages.
        public var responder: Bool?
    }

    /// Its peer id.
    public var peer: UInt64
    /// The name it gave in HELLO.
    public var name: String
    /// `handshaking`, `active`, `draining` (the broker is stopping) or `closing`.
    public var state: String
    /// Its credentials, as the kernel reported them when it connected.
    public var pid: UInt32
    public var uid: UInt32
    public var gid: UInt32
    /// The name of its process (`/proc/<pid>/comm`), empty if unknown.
    public var process: String
    /// Whether the process that connected has exited while another holds the connection.
    public var processExited: Bool
    /// Seconds since it was welcomed.
    public var connectedSeconds: UInt64
    /// Its slow-consumer policy and output limit in force.
    public var policy: String
    public var outputLimit: Int
    /// Bytes the broker has queued for it, not yet written.
    public var queuedBytes: Int
    /// Messages it published, messages delivered to it, and messages dropped for it.
    public var published: UInt64
    public var received: UInt64
    public var dropped: UInt64
    /// Its subscriptions.
    public var subscriptions: [SubscriptionInfo]

    private enum CodingKeys: String, CodingKey {
        case peer, name, state, pid, uid, gid, process, policy, published, received, dropped, subscriptions
        case processExited = "process_exited", connectedSeconds = "connected_seconds", outputLimit = "output_limit"
        case queuedBytes = "queued_bytes"
    }
}

/// The broker's counters and per-uid usage (``Bus/brokerStatistics()``, `herald stats`).
public struct BrokerStatisticsReport: Sendable, Decodable, Equatable {
    /// One user's share of the broker.
    public struct UIDUsage: Sendable, Decodable, Equatable {
        public var uid: UInt32
        public var connections: Int
        public var subscriptions: Int
        public var queuedBytes: Int
        public var retainedMessages: Int
        public var retainedBytes: Int

        private enum CodingKeys: String, CodingKey {
            case uid, connections, subscriptions
            case queuedBytes = "queued_bytes", retainedMessages = "retained_messages", retainedBytes = "retained_bytes"
        }
    }

    /// The broker process.
    public struct BrokerIdentity: Sendable, Decodable, Equatable {
        public var pid: UInt32
        public var uid: UInt32
        public var name: String
    }

    /// Retained messages held.
    public struct RetainedTotals: Sendable, Decodable, Equatable {
        public var messages: Int
        public var bytes: Int
    }

    public var broker: BrokerIdentity
    /// Every counter of the broker, by snake_case name (connections accepted, messages in and
    /// out, drops, disconnects by reason, refusals, …).
    public var counters: [String: Int64]
    public var retained: RetainedTotals
    /// Requests handed to responders and not yet answered.
    public var waitingRequests: Int
    /// The per-uid quotas in force, by name.
    public var limits: [String: Int64]
    /// Usage per uid.
    public var uids: [UIDUsage]

    private enum CodingKeys: String, CodingKey {
        case broker, counters, retained, limits, uids
        case waitingRequests = "waiting_requests"
    }
}

extension Bus {
    /// The peers connected to the broker, as it describes them: identity, process,
    /// subscriptions, queued bytes, counters. A request on `$SYS/broker/peers` that the
    /// broker answers itself (its policy may refuse it).
    nonisolated(nonsending) public func peers(timeout: Duration = .seconds(5)) async throws(HeraldError) -> [PeerInfo] {
        try Self.decodeBrokerAnswer([PeerInfo].self, try await request("$SYS/broker/peers", [UInt8](), timeout: timeout))
    }

    /// The broker's counters and per-uid usage; a request on `$SYS/broker/stats` that the
    /// broker answers itself.
    nonisolated(nonsending) public func brokerStatistics(timeout: Duration = .seconds(5)) async throws(HeraldError) -> BrokerStatisticsReport {
        try Self.decodeBrokerAnswer(BrokerStatisticsReport.self, try await request("$SYS/broker/stats", [UInt8](), timeout: timeout))
    }

    static func decodeBrokerAnswer<T: Decodable>(_ type: T.Type, _ answer: Message) throws(HeraldError) -> T {
        // Explicit coding keys, not convertFromSnakeCase: that would rename the counters'
        // dictionary keys too.
        let decoder = JSONDecoder()
        do {
            return try decoder.decode(type, from: Data(answer.payload))
        } catch {
            throw .connectionLost("the broker's answer on \(answer.topic) cannot be read: \(error)")
        }
    }
}
