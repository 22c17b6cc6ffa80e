import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Reconnecting, the I/O thread's side (see ``ReconnectPolicy``): drop the dead socket,
/// keep what was not written in full, retry with backoff until a new session is up (or
/// close(), a refusal or the policy's limit ends the bus), then hand the connection what to
/// re-send and mark every subscription's next message.
extension IOLoop {
    /// Returns true once a new session is up (the caller runs its loop), false if the bus ended.
    func reconnect(after reason: HeraldError) -> Bool {
        guard let policy = connection.options.reconnect else { return false }
        let lostAt = ContinuousClock.now
        let carried = unwrittenFrames()
        writing.removeAll()
        writeOffset = 0
        waitingForWritable = false
        closeSession()
        connection.beginReconnecting(reason, publishing: policy.publishing)
        var lastError = reason
        var attempt = 0
        while true {
            attempt += 1
            guard waitBeforeAttempt(policy.delay(beforeAttempt: attempt)) else {
                connection.finish(reason: nil, failSubscriptions: false)
                return false
            }
            if let limit = policy.giveUpAfter, lostAt.duration(to: .now) > limit {
                connection.finish(reason: lastError, failSubscriptions: true)
                return false
            }
            socket = herald_unix_stream_socket(0)
            guard socket >= 0 else {
                lastError = .connectionLost("cannot create a socket: \(systemErrorDescription(herald_errno()))")
                continue
            }
            switch performHandshake() {
            case .success:
                finished = false
                closeDeadline = nil
                let downtime = lostAt.duration(to: .now)
                let attempts = attempt
                let connection = self.connection
                // `reconnected` is reported once every subscription is confirmed by the new broker.
                connection.resumeAfterReconnect(carried: carried, into: &writing) { _ in
                    connection.emit(.reconnected(attempt: attempts, downtime: downtime))
                }
                markReconnectInEverySubscription()
                return true
            case .failure(let error):
                closeSession()
                switch error {
                case .closed:
                    connection.finish(reason: nil, failSubscriptions: false)
                    return false
                case .notAuthorized, .unsupportedVersion, .untrustedBroker:
                    // The new broker refuses this client, or is not one to talk to: retrying
                    // will not change that (and an impostor must not be retried into).
                    connection.finish(reason: error, failSubscriptions: true)
                    return false
                default:
                    lastError = error
                }
            }
        }
    }

    /// With a reconnect policy, a first handshake that a broker cut short by going away (a
    /// restart: end of stream or GOODBYE before WELCOME, or `too_many_connections`) is tried
    /// again with the policy's backoff, within the connect timeout: a client started while its
    /// broker restarts connects instead of failing.
    func retryInterruptedHandshake(_ first: Result<Welcome, HeraldError>) -> Result<Welcome, HeraldError> {
        guard let policy = connection.options.reconnect else { return first }
        let deadline = ContinuousClock.now + connection.options.connectTimeout
        var result = first
        var attempt = 0
        while case .failure = result, handshakeInterrupted {
            handshakeInterrupted = false
            attempt += 1
            closeSession()
            guard waitBeforeAttempt(policy.delay(beforeAttempt: attempt)), ContinuousClock.now < deadline else { return result }
            socket = herald_unix_stream_socket(0)
            guard socket >= 0 else { return result }
            result = performHandshake()
        }
        return result
    }

    /// The frames of the write buffer from the first one not written in full: the broker
    /// discards a partial frame, so it goes again, whole.
    private func unwrittenFrames() -> [UInt8] {
        var start = 0
        while start < writing.count {
            let length = FrameHeader(loadingFrom: writing.bytes + start).frameLength
            if start + length > writeOffset { break }
            start += length
        }
        guard start < writing.count else { return [] }
        return Array(UnsafeRawBufferPointer(start: writing.bytes + start, count: writing.count - start))
    }

    /// Closes the socket and the epoll instance and forgets what was read from them.
    func closeSession() {
        if epollFD >= 0 { close(epollFD) }
        epollFD = -1
        if socket >= 0 { close(socket) }
        socket = -1
        readStart = 0
        readEnd = 0
        closeQueuedDescriptors()
        pendingDropped = 0
        blockingSubscriptions.removeAll()
        cacheValid = false
    }

    /// Sleeps `delay`, woken early by close(). Returns false if close() was requested.
    func waitBeforeAttempt(_ delay: Duration) -> Bool {
        let deadline = ContinuousClock.now + delay
        while true {
            if connection.closeRequested.load(ordering: .acquiring) { return false }
            let remaining = ContinuousClock.now.duration(to: deadline)
            if remaining <= .zero { return true }
            var descriptor = pollfd(fd: connection.wakeFD, events: Int16(POLLIN), revents: 0)
            if poll(&descriptor, 1, Int32(clamping: milliseconds(remaining) + 1)) > 0 { _ = herald_eventfd_drain(connection.wakeFD) }
        }
    }

    /// Every subscription's next message says that messages may be missing before it.
    private func markReconnectInEverySubscription() {
        refreshTargetsIfNeeded()
        for index in targets.indices {
            if targets[index].staged.isEmpty { touched.append(index) }
            targets[index].staged.appendReconnectMarker()
        }
        deliverStaged()
    }
}
