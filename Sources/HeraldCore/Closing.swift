import HeraldProtocol
import Logging

/// Errors and the end of a session: request errors, fatal errors, closing with a bounded
/// linger, removal.
extension BrokerCore {

    /// Sends a non-fatal ERROR: the request failed, the session goes on.
    func requestError(_ peer: PeerPointer, _ code: ErrorCode, requestID: UInt32, _ message: String) {
        statistics.requestErrors &+= 1
        logger.notice("request refused: \(code)", metadata: peerMetadata(peer, ["request": "\(requestID)", "error": "\(message)"]))
        enqueue(.error(ErrorFrame(code, requestID: requestID, message: message)), to: peer)
    }

    /// Sends a fatal ERROR and closes the peer once it has been written.
    func fail(_ peer: PeerPointer, _ code: ErrorCode, _ message: String, linger: Double? = nil) {
        guard peer.pointee.isOpen else { return }
        switch code {
        case .notAuthorized, .tooManyConnections, .slowConsumer:
            break  // Counted and logged where they are decided.
        default:
            statistics.protocolErrors &+= 1
            logger.warning("closing connection: \(code)", metadata: peerMetadata(peer, ["error": "\(message)"]))
        }
        enqueue(.error(ErrorFrame(code: code.rawValue, isFatal: true, requestID: 0, message: message)), to: peer, control: false)
        startClosing(peer, reason: "\(code): \(message)", linger: linger)
    }

    /// The server saw `peer` end its stream at `now` while output is still queued for it:
    /// stop reading and routing, write what is queued, then close.
    func beginClosing(_ peer: PeerPointer, reason: String, now: Double) {
        clock = now
        startClosing(peer, reason: reason)
    }

    /// Refuses `peer` with a fatal ERROR that gets one write attempt, then the socket is
    /// closed without lingering (refusals must not hold descriptors).
    func refuse(_ peer: PeerPointer, _ code: ErrorCode, _ message: String) {
        peer.pointee.closeImmediately = true
        fail(peer, code, message)
    }

    /// Stops routing to and reading from `peer`; the server closes it once its output is
    /// written or its linger deadline passes. Past ``BrokerConfiguration/maxLingeringConnections``
    /// lingering peers, the peer gets one write attempt and no linger.
    func startClosing(_ peer: PeerPointer, reason: String, linger: Double? = nil) {
        guard peer.pointee.isOpen else { return }
        peer.pointee.closeReason = reason
        dropState(of: peer)
        peer.pointee.state = .closing
        peer.pointee.closeDeadline = clock + (linger ?? configuration.closeLinger)
        if !peer.pointee.closeImmediately {
            // A stopping broker lets every peer linger for the grace period: it exits then anyway.
            if lingeringCount < configuration.maxLingeringConnections || shuttingDown {
                peer.pointee.countedAsLingering = true
                lingeringCount += 1
            } else {
                peer.pointee.closeImmediately = true
                statistics.lingerRefusals &+= 1
            }
        }
        touch(peer)
    }

    /// Removes `peer`'s subscriptions and input, releases the publishers it held paused,
    /// and takes it out of the handshake count.
    func dropState(of peer: PeerPointer) {
        // Its subscriptions go first, so it hears neither its will nor its own departure;
        // then, while it is still open, its will goes out as its own PUBLISH.
        removeSubscriptions(of: peer)
        fireLastWill(of: peer)
        if peer.pointee.wasWelcomed { announcePresence(of: peer, connected: false, reason: peer.pointee.closeReason) }
        dropRequests(of: peer)
        releaseInput(peer)
        leaveHandshake(peer)
    }

    /// Removes all of `peer`'s subscriptions (from the index and its uid's quota) and
    /// releases the publishers it held paused: nothing is routed to it any more.
    func removeSubscriptions(of peer: PeerPointer) {
        for (id, filter) in peer.pointee.subscriptions {
            if peer.pointee.responderIDs.contains(id) {
                responders.remove(filter, peer: peer, subscriptionID: id)
            } else {
                index.remove(filter, peer: peer, subscriptionID: id)
            }
            if peer.pointee.monitorIDs.contains(id) { monitors.remove(filter, peer: peer, subscriptionID: id) }
        }
        let held = peer.pointee.subscriptions.count
        if held > 0 { charge(peer.pointee.credentials.uid) { $0.subscriptions -= held } }
        peer.pointee.subscriptions.removeAll()
        peer.pointee.responderIDs.removeAll()
        peer.pointee.monitorIDs.removeAll()
        releasePausedPublishers(of: peer)
    }

    /// Appends a frame the broker itself produces. Replies (`control`) may exceed the
    /// output limit by ``BrokerConfiguration/controlReplyAllowance``; a peer that piles up
    /// more without reading is closed with `replies_not_read`, queued right after the frame
    /// it is reading, so broker memory stays bounded and the peer still learns why.
    func enqueue(_ frame: Frame, to peer: PeerPointer, control: Bool = true) {
        if control && peer.pointee.output.count > peer.pointee.outputLimit + configuration.controlReplyAllowance {
            let discarded = truncateOutputToFrameBoundary(of: peer)
            statistics.repliesNotRead &+= 1
            fail(peer, .repliesNotRead,
                "more than \(configuration.controlReplyAllowance) bytes of replies piled up past the output limit of "
                    + "\(peer.pointee.outputLimit) bytes without being read; \(discarded) queued bytes were discarded")
            return
        }
        let bytes = FrameEncoder.encode(frame)
        peer.pointee.output.append(bytes)
        peer.pointee.chargeQueued(bytes.count)
        touch(peer)
    }

    /// The server closed `peer`'s socket (end of stream, error, or finished closing).
    func remove(_ peer: PeerPointer, reason: String) {
        guard peer.pointee.state != .closed else { return }
        let wasClosing = peer.pointee.state == .closing
        if !wasClosing {
            peer.pointee.closeReason = reason
            dropState(of: peer)
        }
        if peer.pointee.chargedToUser {
            peer.pointee.chargedToUser = false
            charge(peer.pointee.credentials.uid) { $0.connections -= 1 }
        }
        if peer.pointee.countedAsLingering {
            peer.pointee.countedAsLingering = false
            lingeringCount -= 1
        }
        let why = wasClosing ? peer.pointee.closeReason : reason
        releaseQueuedOutput(of: peer)
        releaseDescriptors(of: peer)
        peer.pointee.state = .closed
        statistics.connectionsOpen -= 1
        if !peer.pointee.wasWelcomed {
            // Refusals and handshake failures were logged (rate-limited) when they happened.
            logger.debug("connection closed before handshake", metadata: ["peer": "\(peer.pointee.id)", "reason": "\(why)"])
        } else {
            logger.info(
                "peer disconnected",
                metadata: [
                    "peer": "\(peer.pointee.id)", "name": "\(peer.pointee.name)", "pid": "\(peer.pointee.credentials.pid)",
                    "uid": "\(peer.pointee.credentials.uid)", "reason": "\(why)",
                    "published": "\(peer.pointee.messagesPublished)", "received": "\(peer.pointee.messagesReceived)",
                    "dropped": "\(peer.pointee.totalDropped)",
                ])
        }
        peers.remove(peer)
    }

    func peerMetadata(_ peer: PeerPointer, _ extra: Logger.Metadata) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "peer": "\(peer.pointee.id)", "pid": "\(peer.pointee.credentials.pid)", "uid": "\(peer.pointee.credentials.uid)",
        ]
        if !peer.pointee.name.isEmpty { metadata["name"] = "\(peer.pointee.name)" }
        metadata.merge(extra) { _, new in new }
        return metadata
    }
}
