import HeraldProtocol
import Logging

/// Stopping the broker: GOODBYE to everyone, then a bounded flush.
extension BrokerCore {
    /// Says GOODBYE to every peer; each closes once its queued output is written or the
    /// shutdown grace period ends.
    public func beginShutdown(now: Double) {
        clock = now
        shuttingDown = true
        for peer in peers.snapshot() where peer.pointee.isOpen {
            enqueue(.goodbye(Goodbye(reason: ErrorCode.brokerShuttingDown.rawValue, message: "broker shutting down")),
                to: peer, control: false)
            startClosing(peer, reason: "broker shutting down", linger: configuration.shutdownGrace)
        }
    }
}
