import HeraldProtocol
import Logging

/// Stopping the broker (PROTOCOL.md §5.5): GOODBYE to everyone after what is queued for
/// them, then every frame a client sent before it saw the GOODBYE is still handled, until
/// that client closes its side or the grace period ends. So a client that closes when it
/// reads the GOODBYE knows that everything it wrote was handled (a retained publish stored,
/// to be kept for the next broker), and that what it had not written yet is for the next.
extension BrokerCore {
    /// Says GOODBYE to every peer and stops routing to them; active peers are still read
    /// until they close or the shutdown grace period ends, peers in the handshake are closed.
    public func beginShutdown(now: Double) {
        clock = now
        shuttingDown = true
        let goodbye = Frame.goodbye(Goodbye(reason: ErrorCode.brokerShuttingDown.rawValue, message: "broker shutting down"))
        for peer in peers.snapshot() where peer.pointee.isOpen {
            enqueue(goodbye, to: peer, control: false)
            guard peer.pointee.state == .active else {
                startClosing(peer, reason: "broker shutting down", linger: configuration.shutdownGrace)
                continue
            }
            // Nothing is routed to it after its GOODBYE; its own frames still count.
            removeSubscriptions(of: peer)
            peer.pointee.drainingForShutdown = true
            peer.pointee.closeDeadline = clock + configuration.shutdownGrace
        }
    }

    /// A draining peer whose grace period ended without it closing: closed now.
    func endDraining(_ peer: PeerPointer) {
        logger.notice("closing a connection that did not close within the shutdown grace period after GOODBYE",
            metadata: peerMetadata(peer, ["grace": "\(configuration.shutdownGrace)"]))
        peer.pointee.closeImmediately = true
        startClosing(peer, reason: "broker shutting down (the client did not close within the grace period)", linger: 0)
    }
}
