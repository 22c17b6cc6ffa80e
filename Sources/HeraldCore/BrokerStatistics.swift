/// Broker-wide counters, kept as plain integers on the event-loop thread.
public struct BrokerStatistics: Sendable, Equatable {
    /// Connections accepted since start.
    public var connectionsAccepted: UInt64 = 0
    /// Connections refused at admission (policy or limit).
    public var connectionsRefused: UInt64 = 0
    /// Connections currently open.
    public var connectionsOpen = 0
    /// PUBLISH frames routed.
    public var messagesPublished: UInt64 = 0
    /// MESSAGE frames queued to subscribers.
    public var messagesDelivered: UInt64 = 0
    /// Deliveries dropped under the `drop` slow-consumer policy.
    public var messagesDropped: UInt64 = 0
    /// Subscribers disconnected under the `disconnect` policy.
    public var slowConsumersDisconnected: UInt64 = 0
    /// Times a publisher was paused for a `backpressure` subscriber.
    public var publishersPaused: UInt64 = 0
    /// Connections closed for a protocol violation (fatal ERROR).
    public var protocolErrors: UInt64 = 0
    /// Non-fatal ERROR frames sent (invalid topic, …).
    public var requestErrors: UInt64 = 0
    /// Connections accepted and closed at once because the broker was out of file
    /// descriptors (each told `too_many_connections` if its socket took the ERROR).
    public var connectionsShedAtDescriptorLimit: UInt64 = 0
    /// Connections closed because a frame stayed incomplete past the frame timeout.
    public var frameTimeouts: UInt64 = 0
    /// Connections closed because their partial frame would have gone past the partial-input budget.
    public var inputBudgetRefusals: UInt64 = 0
    /// Connections closed because they did not read the broker's replies.
    public var repliesNotRead: UInt64 = 0
    /// Closing connections closed without lingering because too many were lingering.
    public var lingerRefusals: UInt64 = 0
    /// Requests refused because their uid is at a per-uid quota (subscriptions); refused
    /// connections are counted in ``connectionsRefused``.
    public var quotaRefusals: UInt64 = 0
    /// Deliveries to a lagging subscriber whose uid was at its queued-output quota (each then
    /// handled by the subscriber's slow-consumer policy: dropped, disconnect, or publisher paused).
    public var queuedQuotaHits: UInt64 = 0
    /// Connections whose opening process exited while they stayed open (pid 0 from then on).
    public var connectionsOutlivingProcess: UInt64 = 0
    /// PUBLISH and SUBSCRIBE requests refused by the policy (`forbidden`).
    public var policyDenials: UInt64 = 0
    /// Subscriptions removed because a reloaded policy denies them.
    public var subscriptionsRevoked: UInt64 = 0
    /// Connections closed because a reloaded policy no longer admits their user.
    public var connectionsClosedByPolicy: UInt64 = 0
    /// Retained PUBLISH frames refused because their uid was at a retained quota.
    public var retainedQuotaRefusals: UInt64 = 0
    /// Retained messages handed to new subscriptions.
    public var retainedDelivered: UInt64 = 0

    /// Creates zeroed counters.
    public init() {}
    /// REQUESTs handed to a responder as a CALL.
    public var requestsRouted: UInt64 = 0
    /// REQUESTs answered `no_responders`.
    public var requestsWithoutResponder: UInt64 = 0
    /// REQUESTs refused for the requester's quota (`too_many_requests`) or busy responders (`responder_busy`).
    public var requestsRefused: UInt64 = 0
    /// REPLYs handed to their requester as a RESPONSE.
    public var responsesDelivered: UInt64 = 0
    /// REPLYs whose requester had said goodbye to a stopping broker.
    public var responsesUndeliverable: UInt64 = 0
    /// Requests failed with `responder_gone` because their responder closed its connection.
    public var requestsFailedByResponderExit: UInt64 = 0
    /// Requests failed with `request_timeout`.
    public var requestTimeouts: UInt64 = 0
    /// SENDs delivered to their target as DIRECT.
    public var directDelivered: UInt64 = 0
    /// SENDs refused because the target is not connected or does not accept direct messages.
    public var directRefused: UInt64 = 0
    /// `$SYS/peers/connected` and `$SYS/peers/disconnected` events published.
    public var presenceEvents: UInt64 = 0
    /// Last wills published for peers that went without GOODBYE.
    public var willsPublished: UInt64 = 0
    /// Requests the broker answered itself ($SYS/broker/peers, $SYS/broker/stats).
    public var introspectionRequests: UInt64 = 0
    /// MONITORED copies queued for monitor subscriptions.
    public var monitoredCopies: UInt64 = 0
    /// Bytes read from clients (every frame, whole or not).
    public var bytesReceived: UInt64 = 0
    /// Bytes written to clients.
    public var bytesWritten: UInt64 = 0
    /// File descriptors received with frames (PROTOCOL.md §4.22).
    public var descriptorsReceived: UInt64 = 0
    /// Descriptors sent to receivers (one per receiver per descriptor).
    public var descriptorsPassed: UInt64 = 0
    /// Descriptors a receiver did not get because it did not announce `fds` (or is a monitor): the frame said so.
    public var descriptorsWithheld: UInt64 = 0
    /// Frames with descriptors refused: too many, over a quota, receiver without `fds`.
    public var descriptorRefusals: UInt64 = 0
    /// Descriptors the broker holds now: received, waiting for their receivers' sockets.
    public var descriptorsHeld = 0
}
