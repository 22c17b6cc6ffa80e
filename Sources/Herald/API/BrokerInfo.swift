import HeraldProtocol

/// What the broker said about itself and this connection when it accepted it.
public struct BrokerInfo: Sendable, Equatable {
    /// Broker software name and version, e.g. `heraldd 0.1.0`.
    public var serverName: String
    /// The protocol version chosen for the session.
    public var protocolVersion: UInt16
    /// The broker's process id.
    public var pid: UInt32
    /// The user id the broker runs as.
    public var uid: UInt32
    /// Largest frame (8-byte header, topic and payload) the broker accepts from this client.
    public var maxFrameSize: Int
    /// Longest topic or filter, in UTF-8 bytes.
    public var maxTopicLength: Int
    /// Most subscriptions this connection may hold.
    public var maxSubscriptions: Int
    /// Bytes the broker queues for this client before its slow-consumer policy applies.
    public var outputLimit: Int
    /// The slow-consumer policy in force for this connection.
    public var slowConsumerPolicy: SlowConsumerPolicy
    /// This process's credentials as the kernel reported them to the broker; every message
    /// this client publishes is stamped with them.
    public var clientCredentials: PeerCredentials

    /// Creates the summary of a WELCOME.
    public init(_ welcome: Welcome) {
        serverName = welcome.serverName
        protocolVersion = welcome.version
        pid = welcome.brokerPID
        uid = welcome.brokerUID
        maxFrameSize = Int(welcome.maxFrameSize)
        maxTopicLength = Int(welcome.maxTopicLength)
        maxSubscriptions = Int(welcome.maxSubscriptions)
        outputLimit = Int(welcome.outputLimit)
        slowConsumerPolicy = welcome.slowConsumerPolicy
        clientCredentials = welcome.credentials
    }
}
