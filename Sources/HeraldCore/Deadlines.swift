import HeraldProtocol
import Logging

/// The once-a-second sweep: handshake and frame timeouts, linger deadlines, idle buffers.
extension BrokerCore {

    /// The once-a-second sweep: closes peers that missed the handshake deadline or sat on
    /// an incomplete frame past the frame timeout, frees the buffers of peers with nothing
    /// queued (idle connections cost no buffer memory), and returns closing peers whose
    /// linger deadline has passed (the server closes those sockets).
    public func expireDeadlines(now: Double) -> [PeerSlot] {
        clock = now
        expireRequests(now: now)
        var expired: [PeerSlot] = []
        for peer in peers.snapshot() {
            peer.pointee.output.releaseStorageIfEmpty()
            peer.pointee.input.releaseStorageIfEmpty()
            switch peer.pointee.state {
            case .handshaking where now >= peer.pointee.handshakeDeadline:
                fail(peer, .handshakeTimeout, "no HELLO within \(configuration.handshakeTimeout) seconds")
            case .active where peer.pointee.drainingForShutdown && now >= peer.pointee.closeDeadline:
                endDraining(peer)
            case .handshaking, .active:
                if !peer.pointee.input.isEmpty && !peer.pointee.isReadPaused
                    && now - peer.pointee.inputSince >= configuration.frameTimeout
                {
                    statistics.frameTimeouts &+= 1
                    fail(peer, .frameTimeout,
                        "a frame was still incomplete \(configuration.frameTimeout) seconds after its first byte "
                            + "(\(peer.pointee.input.count) bytes received)")
                }
            case .closing where now >= peer.pointee.closeDeadline:
                expired.append(peer.pointee.slot)
            default:
                break
            }
        }
        return expired
    }
}
