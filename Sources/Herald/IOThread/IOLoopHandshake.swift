import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The handshake, on the I/O thread with a blocking socket: connect (bounded by the
/// connect timeout), HELLO, and WELCOME or the broker's reason for refusing.
extension IOLoop {
    func performHandshake() -> Result<Welcome, HeraldError> {
        let address = connection.address
        let options = connection.options
        let deadline = ContinuousClock.now + options.connectTimeout
        // Bound connect() too: it blocks while the broker's accept backlog is full.
        let (seconds, attoseconds) = options.connectTimeout.components
        var sendTimeout = timeval(tv_sec: Int(max(0, seconds)), tv_usec: Int(attoseconds / 1_000_000_000_000))
        if sendTimeout.tv_sec == 0 && sendTimeout.tv_usec == 0 { sendTimeout.tv_usec = 1 }
        _ = setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &sendTimeout, socklen_t(MemoryLayout<timeval>.size))
        var name = address.name
        let connected = name.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) {
                herald_unix_connect(socket, $0.baseAddress, $0.count, address.isAbstract ? 1 : 0)
            }
        }
        guard connected == 0 else {
            let error = herald_errno()
            if error == EAGAIN || error == EINPROGRESS { return .failure(.timeout) }
            return .failure(.brokerUnreachable(address: address.description, reason: connectFailureDescription(error)))
        }
        // Who listens here, as the kernel says: checked before anything (the client name
        // included) is sent, so a process squatting on the name learns nothing.
        var broker = herald_peer_credentials()
        guard herald_peer_credentials_of(socket, &broker) == 0 else {
            return .failure(.handshakeFailed("cannot read the broker's credentials: \(systemErrorDescription(herald_errno()))"))
        }
        guard options.brokerTrust.accepts(uid: broker.uid) else {
            return .failure(.untrustedBroker(uid: broker.uid, pid: broker.pid))
        }
        let hello = Hello(
            slowConsumerPolicy: options.slowConsumerPolicy,
            outputLimit: UInt32(clamping: max(0, options.outputLimit ?? 0)),
            capabilities: Capabilities.retained | Capabilities.requests | Capabilities.direct | Capabilities.lastWill
                | (options.acceptsDirectMessages ? Capabilities.directInbox : 0)
                | (options.acceptsFileDescriptors ? Capabilities.descriptors : 0),
            clientName: options.clientName)
        let helloBytes = FrameEncoder.encode(.hello(hello))
        var sent = 0
        // A broker that refuses this peer on sight sends a fatal ERROR and closes, so sending
        // HELLO can fail; its ERROR is still readable and says why.
        var sendError: Int32?
        while sent < helloBytes.count {
            let n = helloBytes.withUnsafeBytes { send(socket, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                let error = herald_errno()
                if error == EINTR { continue }
                sendError = error
                break
            }
            sent += n
        }
        func failure(_ what: String) -> Result<Welcome, HeraldError> {
            if let sendError { return .failure(.handshakeFailed("cannot send HELLO: \(systemErrorDescription(sendError))")) }
            return .failure(.handshakeFailed(what))
        }
        while true {
            if readEnd > readStart {
                let available = UnsafeRawBufferPointer(start: readBuffer + readStart, count: readEnd - readStart)
                do {
                    if let (frame, length) = try FrameDecoder.decode(available) {
                        readStart += length
                        return handshakeOutcome(frame)
                    }
                } catch {
                    return .failure(.handshakeFailed("the broker sent an invalid frame: \(error)"))
                }
            }
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return .failure(.timeout) }
            // The wake eventfd too: close() during a reconnect must not wait for a broker.
            var descriptors = [
                pollfd(fd: socket, events: Int16(POLLIN), revents: 0),
                pollfd(fd: connection.wakeFD, events: Int16(POLLIN), revents: 0),
            ]
            let ready = poll(&descriptors, 2, Int32(clamping: milliseconds(remaining) + 1))
            if ready < 0 {
                let error = herald_errno()
                if error == EINTR { continue }
                return .failure(.handshakeFailed("poll failed: \(systemErrorDescription(error))"))
            }
            if descriptors[1].revents != 0 {
                _ = herald_eventfd_drain(connection.wakeFD)
                if connection.closeRequested.load(ordering: .acquiring) { return .failure(.closed) }
            }
            if descriptors[0].revents == 0 { continue }
            if readEnd == readCapacity { makeRoom(for: readEnd - readStart + 1) }
            let n = read(socket, readBuffer + readEnd, readCapacity - readEnd)
            if n > 0 {
                readEnd += n
            } else if n == 0 {
                handshakeInterrupted = true
                return failure("the broker closed the connection before answering HELLO")
            } else {
                let error = herald_errno()
                if error == EINTR { continue }
                // Reset: the broker died (a restart) before it read our HELLO.
                if error == ECONNRESET || error == EPIPE { handshakeInterrupted = true }
                return failure("cannot read the broker's answer: \(systemErrorDescription(error))")
            }
        }
    }

    func handshakeOutcome(_ frame: Frame) -> Result<Welcome, HeraldError> {
        switch frame {
        case .welcome(let welcome):
            guard welcome.version >= ProtocolVersion.minimum && welcome.version <= ProtocolVersion.maximum else {
                return .failure(.unsupportedVersion)
            }
            maxFrameSize = Int(welcome.maxFrameSize)
            guard herald_set_nonblocking(socket, 1) == 0, setUpEpoll() else {
                return .failure(.connectionLost("cannot set up the socket: \(systemErrorDescription(herald_errno()))"))
            }
            return .success(welcome)
        case .error(let error):
            switch error.knownCode {
            case .notAuthorized, .unsupportedVersion:
                return .failure(HeraldError.fromBroker(error))
            case let code:
                // Out of descriptors or at a limit: the broker may well accept a moment later.
                handshakeInterrupted = code == .tooManyConnections
                let name = code?.description ?? "error \(error.code)"
                return .failure(.handshakeFailed(error.message.isEmpty ? name : "\(name): \(error.message)"))
            }
        case .goodbye:
            // The broker is stopping (a restart under a service manager): the next one will answer.
            handshakeInterrupted = true
            return .failure(.handshakeFailed("the broker is shutting down"))
        case let other:
            return .failure(.handshakeFailed("the broker answered HELLO with \(other.type) instead of WELCOME"))
        }
    }

    func setUpEpoll() -> Bool {
        epollFD = herald_epoll_create()
        guard epollFD >= 0 else { return false }
        registeredEvents = IOLoop.eventIn | IOLoop.eventRdHup
        return herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, connection.wakeFD, IOLoop.eventIn, IOLoop.wakeToken) == 0
            && herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, socket, registeredEvents, IOLoop.socketToken) == 0
    }
}
