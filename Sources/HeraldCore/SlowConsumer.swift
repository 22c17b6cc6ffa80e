import HeraldProtocol
import Logging

/// What happens when a subscriber falls behind: the three policies of PROTOCOL.md §10, and
/// their unwinding as its output drains.
extension BrokerCore {
    /// Applies `subscriber`'s slow-consumer policy to a delivery that does not fit (in its
    /// output limit, or, for a subscriber that is behind, in its uid's queued-output quota),
    /// or that follows a run of drops. Returns whether the delivery should be queued.
    /// `publisher` is nil for what the broker publishes itself; it is never paused, so a
    /// backpressure subscriber is not sent broker messages through here.
    func admitOverLimit(_ subscriber: PeerPointer, publisher: PeerPointer?, length: Int) -> Bool {
        let limit = subscriber.pointee.outputLimit
        let queued = subscriber.pointee.output.count
        // Only a subscriber that is itself behind pays for its uid's quota: its siblings
        // that keep up are not affected.
        let overUIDQuota = queued > BrokerConfiguration.laggingBacklog
            && subscriber.pointee.queuedForUID + length > configuration.maxQueuedBytesPerUID
        if overUIDQuota { statistics.queuedQuotaHits &+= 1 }
        switch subscriber.pointee.policy {
        case .drop:
            // Hysteresis: once dropping, keep dropping until half the limit has drained, so a
            // subscriber at the edge gets one gap and one notice, not a notice per message.
            let pending = subscriber.pointee.pendingDroppedMessages
            let threshold = pending == 0 ? limit : limit / 2
            if (queued > 0 && queued + length > threshold) || overUIDQuota {
                if pending == 0 { logDropEpisode(subscriber, queued: queued, overUIDQuota: overUIDQuota) }
                subscriber.pointee.pendingDroppedMessages &+= 1
                subscriber.pointee.pendingDroppedBytes &+= UInt64(length)
                subscriber.pointee.totalDropped &+= 1
                statistics.messagesDropped &+= 1
                return false
            }
            sendDropNotice(subscriber)
            return true
        case .disconnect:
            statistics.slowConsumersDisconnected &+= 1
            let uid = subscriber.pointee.credentials.uid
            let quota = configuration.maxQueuedBytesPerUID
            logger.warning(
                "disconnecting slow consumer",
                metadata: peerMetadata(subscriber, ["queued": "\(queued)", "limit": "\(limit)",
                    "uid_queued": "\(subscriber.pointee.queuedForUID)", "uid_quota": "\(quota)"]))
            // What is queued beyond the frame being written is lost anyway; cut it so the
            // ERROR reaches the subscriber right after the last whole message.
            truncateOutputToFrameBoundary(of: subscriber)
            let why = overUIDQuota && queued + length <= limit
                ? "fell \(queued) bytes behind while uid \(uid)'s connections had the maximum of \(quota) bytes queued (slow-consumer policy: disconnect)"
                : "fell more than \(limit) bytes behind (slow-consumer policy: disconnect)"
            fail(subscriber, .slowConsumer, why, linger: configuration.slowConsumerLinger)
            return false
        case .backpressure:
            // Lossless: queue it anyway (the overshoot is bounded by one read batch of the
            // publisher) and stop reading the publisher until this subscriber drains.
            guard let publisher else { return true }
            if !subscriber.pointee.pausedPublishers.contains(publisher.pointee.id) {
                subscriber.pointee.pausedPublishers.append(publisher.pointee.id)
                publisher.pointee.blockedOnCount += 1
                statistics.publishersPaused &+= 1
                logger.debug(
                    "pausing publisher for a backpressure subscriber",
                    metadata: peerMetadata(subscriber, ["publisher": "\(publisher.pointee.id)"]))
            }
            return true
        }
    }

    /// Logs the start of a run of drops, at most once a second per subscriber so a peer
    /// hovering at its limit cannot flood the log (the counters still count every drop).
    func logDropEpisode(_ subscriber: PeerPointer, queued: Int, overUIDQuota: Bool) {
        let now = clock
        guard now - subscriber.pointee.lastDropLog >= 1 else { return }
        subscriber.pointee.lastDropLog = now
        logger.warning(
            overUIDQuota
                ? "subscriber behind while its uid is at its queued-output quota; dropping its messages until it catches up"
                : "subscriber over its output limit; dropping its messages until it catches up",
            metadata: peerMetadata(subscriber, [
                "queued": "\(queued)", "limit": "\(subscriber.pointee.outputLimit)",
                "uid_queued": "\(subscriber.pointee.queuedForUID)",
                "uid_quota": "\(configuration.maxQueuedBytesPerUID)",
                "dropped_so_far": "\(subscriber.pointee.totalDropped)",
            ]))
    }

    func sendDropNotice(_ subscriber: PeerPointer) {
        let messages = subscriber.pointee.pendingDroppedMessages
        guard messages > 0 else { return }
        let bytes = subscriber.pointee.pendingDroppedBytes
        subscriber.pointee.pendingDroppedMessages = 0
        subscriber.pointee.pendingDroppedBytes = 0
        logger.debug("subscriber caught up; telling it how many messages it lost",
            metadata: peerMetadata(subscriber, ["dropped": "\(messages)"]))
        enqueue(.dropped(DropNotice(messages: messages, bytes: bytes)), to: subscriber, control: false)
    }


    /// The server wrote some of `peer`'s output. Sends a pending drop notice and resumes
    /// paused publishers once the peer has drained below half its limit.
    func didWrite(_ peer: PeerPointer) {
        guard peer.pointee.state == .active else { return }
        let halfLimit = peer.pointee.outputLimit / 2
        guard peer.pointee.output.count <= halfLimit else { return }
        if peer.pointee.pendingDroppedMessages != 0 { sendDropNotice(peer) }
        if !peer.pointee.pausedPublishers.isEmpty { releasePausedPublishers(of: peer) }
    }

    func releasePausedPublishers(of subscriber: PeerPointer) {
        let ids = subscriber.pointee.pausedPublishers
        subscriber.pointee.pausedPublishers.removeAll()
        for id in ids {
            guard let publisher = peers.pointer(id: id) else { continue }
            publisher.pointee.blockedOnCount -= 1
            if publisher.pointee.blockedOnCount == 0 && publisher.pointee.state == .active { resumed.append(publisher.pointee.slot) }
        }
    }
}
