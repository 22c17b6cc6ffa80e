
/// Something that happened to a ``Bus`` connection as a whole, reported by ``Bus/events()``.
public enum BusEvent: Sendable, Equatable {
    /// The broker dropped `count` messages (`bytes` bytes of frames) for this client because
    /// it fell more than its output limit behind (slow-consumer policy `drop`). The next
    /// message delivered carries the count in ``Message/droppedBefore``.
    case messagesDropped(count: UInt64, bytes: UInt64)
    /// The broker refused a message this client published. ``Bus/flush()`` also throws it.
    case publishFailed(HeraldError)
    /// The broker refused a reply this client sent as a responder: the request had already
    /// been answered, had timed out, or its requester had gone (`unknown_call`).
    case replyRefused(HeraldError)
    /// The connection to the broker was lost for this reason; the bus is reconnecting (see
    /// ``ReconnectPolicy``). Subscriptions stay; publishes follow the policy meanwhile.
    case reconnecting(HeraldError)
    /// The bus is connected again, after `attempt` attempts and `downtime` without a
    /// connection, and every subscription is re-established.
    case reconnected(attempt: Int, downtime: Duration)
    /// The bus ended: nil after ``Bus/close()``, otherwise why (a broker loss without
    /// reconnection, or one reconnection gave up on). This is always the last event; the
    /// stream finishes after it.
    case disconnected(HeraldError?)
}
