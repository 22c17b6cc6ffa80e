import CHeraldSys
import HeraldProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The broker's event loop: one thread, edge-triggered epoll over nonblocking AF_UNIX
/// sockets, driving a ``BrokerCore``. Glibc's socket calls are used directly (through the
/// CHeraldSys shim) because the loop needs exact control of reads, writes and readiness:
/// each wakeup reads every readable peer into one shared buffer, lets the core route the
/// whole frames in place, then writes each touched peer once.
public final class EpollServer {
    /// Outcome of ``run()``.
    public enum Exit: Equatable, Sendable {
        /// Stopped by SIGINT/SIGTERM after flushing.
        case signalled(Int32)
    }

    private let core: BrokerCore
    private let listeners: [Listener]
    private let logger: Logger
    private let epollFD: Int32
    private let signalFD: Int32
    /// One read buffer for every peer: complete frames are routed straight out of it.
    private let readBuffer: UnsafeMutableRawBufferPointer
    private var events: UnsafeMutablePointer<herald_event>
    private static let eventCapacity: Int32 = 256
    /// Reads per peer per wakeup before others get a turn, so one fast publisher cannot
    /// starve the rest.
    private static let readsPerTurn = 4
    /// Peers with data still unread (budget exhausted, or resumed after a pause).
    private var pendingReads: [PeerPointer] = []
    // Work lists swapped with the core's each wakeup; kept as fields so their storage is
    // reused instead of reallocated.
    private var readBatch: [PeerPointer] = []
    private var resumedBatch: [PeerPointer] = []
    private var touchedBatch: [PeerPointer] = []
    /// A descriptor held in reserve so accept can still drain the backlog at EMFILE.
    private var reserveFD: Int32
    private var acceptFailureLogged = false
    private var stopping = false
    private var stopSignal: Int32 = 0
    /// Called once every listener is live (e.g. sd_notify READY=1).
    public var onReady: (() -> Void)?
    /// Called when shutdown begins (e.g. sd_notify STOPPING=1).
    public var onStopping: (() -> Void)?

    private static let listenerTag: UInt64 = 1 << 62
    private static let signalTag: UInt64 = 1 << 61

    /// Creates a server for `core` over already-bound `listeners`.
    public init(core: BrokerCore, listeners: [Listener], logger: Logger) throws(ListenerError) {
        self.core = core
        self.listeners = listeners
        self.logger = logger
        herald_ignore_sigpipe()
        epollFD = herald_epoll_create()
        guard epollFD >= 0 else { throw .system("epoll_create1", errno: herald_errno()) }
        signalFD = herald_signalfd_for_shutdown()
        guard signalFD >= 0 else { throw .system("signalfd", errno: herald_errno()) }
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        readBuffer = .allocate(byteCount: 256 << 10, alignment: 16)
        events = .allocate(capacity: Int(EpollServer.eventCapacity))
        for (position, listener) in listeners.enumerated() {
            guard herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, listener.fd, HERALD_EV_IN | HERALD_EV_ET,
                EpollServer.listenerTag | UInt64(position)) == 0
            else { throw .system("epoll_ctl(listener)", errno: herald_errno()) }
        }
        guard herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, signalFD, HERALD_EV_IN, EpollServer.signalTag) == 0 else {
            throw .system("epoll_ctl(signalfd)", errno: herald_errno())
        }
    }

    deinit {
        readBuffer.deallocate()
        events.deallocate()
        close(epollFD)
        close(signalFD)
        if reserveFD >= 0 { close(reserveFD) }
    }

    /// Runs until SIGINT or SIGTERM, then stops accepting, flushes queued output (bounded by
    /// the shutdown grace period), closes every peer and returns.
    public func run() -> Exit {
        onReady?()
        var nextTimerCheck = MonotonicClock.now() + 1
        while true {
            let timeout: Int32 = pendingReads.isEmpty && core.resumed.isEmpty && core.touched.isEmpty ? 500 : 0
            let count = herald_epoll_wait(epollFD, events, EpollServer.eventCapacity, timeout)
            for position in 0..<Int(max(count, 0)) {
                let event = events[position]
                if event.data & EpollServer.listenerTag != 0 {
                    acceptAll(listeners[Int(event.data & 0xFFFF)])
                } else if event.data == EpollServer.signalTag {
                    handleSignals()
                } else {
                    handlePeerEvent(slot: PeerSlot(truncatingIfNeeded: event.data), events: event.events)
                }
            }
            servicePendingReads()
            flushTouched()
            let now = MonotonicClock.now()
            if now >= nextTimerCheck || stopping {
                nextTimerCheck = now + 1
                for peer in core.expireDeadlines(now: now) { closePeer(peer, reason: "closing deadline passed") }
                flushTouched()
            }
            // Closed peers are freed only here, once no list of this iteration points at them.
            pendingReads.removeAll { $0.pointee.state == .closed }
            core.freeRemovedPeers()
            if stopping && core.peerCount == 0 { break }
        }
        return .signalled(stopSignal)
    }

    // MARK: - Accepting

    private func acceptAll(_ listener: Listener) {
        guard !stopping else { return }
        while true {
            let fd = herald_accept(listener.fd)
            if fd < 0 {
                let code = herald_errno()
                if code == EAGAIN || code == EWOULDBLOCK { return }
                if code == EMFILE || code == ENFILE {
                    shedConnectionAtFileLimit(listener, code: code)
                    continue
                }
                if code == ECONNABORTED || code == EPROTO { continue }
                logger.error("accept failed", metadata: ["error": "\(String(cString: strerror(code)))"])
                return
            }
            acceptFailureLogged = false
            var raw = herald_peer_credentials()
            guard herald_peer_credentials_of(fd, &raw) == 0 else {
                logger.warning("SO_PEERCRED failed; closing connection", metadata: ["error": "\(String(cString: strerror(herald_errno())))"])
                close(fd)
                continue
            }
            let credentials = PeerCredentials(pid: UInt32(bitPattern: raw.pid), uid: raw.uid, gid: raw.gid)
            let peer = core.connect(fd: fd, credentials: credentials, now: MonotonicClock.now())
            let interest = (HERALD_EV_IN | HERALD_EV_RDHUP) | HERALD_EV_ET
            if herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, fd, interest, UInt64(peer.pointee.slot)) != 0 {
                logger.error("epoll_ctl(add) failed", metadata: ["error": "\(String(cString: strerror(herald_errno())))"])
                closePeer(peer, reason: "could not watch the socket")
            }
        }
    }

    /// At the descriptor limit the pending connection would sit in the backlog forever
    /// (edge-triggered: no new wakeup). Free the reserve descriptor, accept and close it so
    /// the client sees a clean refusal, then take the reserve back. Logged once per burst.
    private func shedConnectionAtFileLimit(_ listener: Listener, code: Int32) {
        if !acceptFailureLogged {
            logger.error("out of file descriptors; refusing new connections until some close",
                metadata: ["error": "\(String(cString: strerror(code)))", "open": "\(core.peerCount)"])
            acceptFailureLogged = true
        }
        if reserveFD >= 0 {
            close(reserveFD)
            let fd = herald_accept(listener.fd)
            if fd >= 0 { close(fd) }
            reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
    }

    // MARK: - Peer I/O

    private func handlePeerEvent(slot: PeerSlot, events: UInt32) {
        guard let peer = core.peerPointer(slot: slot) else { return }
        if events & HERALD_EV_OUT != 0 {
            flush(peer)
        }
        let hangup = events & (HERALD_EV_RDHUP | HERALD_EV_HUP | HERALD_EV_ERR) != 0
        if hangup || events & HERALD_EV_IN != 0 {
            readFrom(peer, hangup: hangup)
        }
    }

    /// Reads until the socket is drained, the peer is paused, or its turn is used up. With
    /// `hangup` the peer has shut down its side: read on to end of stream even after a
    /// short read, because edge-triggered epoll will not report the hangup again.
    private func readFrom(_ peer: PeerPointer, hangup: Bool) {
        var turns = EpollServer.readsPerTurn
        while turns > 0 {
            let state = peer.pointee.state
            if state == .closed { return }
            if state == .closing {
                // Nothing more will be processed; drain and discard so EOF is noticed.
                let n = read(peer.pointee.fd, readBuffer.baseAddress, readBuffer.count)
                if n == 0 || (n < 0 && herald_errno() != EAGAIN && herald_errno() != EINTR) {
                    closePeer(peer, reason: "connection closed by peer")
                }
                if n <= 0 { return }
                turns -= 1
                continue
            }
            if peer.pointee.isReadPaused { return }  // resumed through core.resumed
            let n = read(peer.pointee.fd, readBuffer.baseAddress, readBuffer.count)
            if n > 0 {
                core.receive(peer, UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: n))
                // A short read means the socket buffer is drained for now; the next arrival
                // raises a new edge (saves one read per wakeup on the hot path).
                if n < readBuffer.count && !hangup { return }
                turns -= 1
            } else if n == 0 {
                peerEnded(peer, reason: "connection closed by peer")
                return
            } else {
                let code = herald_errno()
                if code == EAGAIN || code == EINTR { return }
                peerEnded(peer, reason: "read failed: \(String(cString: strerror(code)))")
                return
            }
        }
        pendingReads.append(peer)
    }

    /// End of stream from an active peer: deliver what is still queued for it (it may have
    /// only shut down its writing side), then close.
    private func peerEnded(_ peer: PeerPointer, reason: String) {
        if peer.pointee.output.isEmpty {
            closePeer(peer, reason: reason)
        } else {
            core.beginClosing(peer, reason: reason)
        }
    }

    /// Continues reading peers that still have input: those whose turn ran out, and
    /// publishers a drained subscriber released.
    private func servicePendingReads() {
        core.takeResumed(into: &resumedBatch)
        defer { resumedBatch.removeAll(keepingCapacity: true) }
        guard !pendingReads.isEmpty || !resumedBatch.isEmpty else { return }
        swap(&readBatch, &pendingReads)
        defer { readBatch.removeAll(keepingCapacity: true) }
        for peer in resumedBatch where peer.pointee.state == .active {
            core.processBufferedInput(peer)
            // Edge-triggered: the socket may hold data whose edge was spent while paused.
            if !peer.pointee.isReadPaused { readBatch.append(peer) }
        }
        for peer in readBatch where peer.pointee.state != .closed { readFrom(peer, hangup: true) }
    }

    /// Writes every peer that got output, once per round; writing can release paused
    /// publishers whose buffered input produces more output, so a few rounds may run.
    private func flushTouched() {
        for _ in 0..<4 {
            core.takeTouched(into: &touchedBatch)
            if touchedBatch.isEmpty { return }
            for peer in touchedBatch where peer.pointee.state != .closed { flush(peer) }
            touchedBatch.removeAll(keepingCapacity: true)
            servicePendingReads()
        }
    }

    private func flush(_ peer: PeerPointer) {
        let fd = peer.pointee.fd
        let wasBackedUp = peer.pointee.waitingForWritable
        while !peer.pointee.output.isEmpty {
            let n = write(fd, peer.pointee.output.readPointer, peer.pointee.output.count)
            if n > 0 {
                peer.pointee.output.consume(n)
                continue
            }
            let code = herald_errno()
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                // Socket full: ask for EPOLLOUT only now, so fast consumers cost no extra wakeups.
                if !wasBackedUp { watchWritable(peer, true) }
                core.didWrite(peer)
                return
            }
            closePeer(peer, reason: "write failed: \(String(cString: strerror(code)))")
            return
        }
        if wasBackedUp { watchWritable(peer, false) }
        core.didWrite(peer)
        if peer.pointee.state == .closing && peer.pointee.output.isEmpty {
            closePeer(peer, reason: peer.pointee.closeReason)
        }
    }

    private func watchWritable(_ peer: PeerPointer, _ enabled: Bool) {
        peer.pointee.waitingForWritable = enabled
        var interest = (HERALD_EV_IN | HERALD_EV_RDHUP) | HERALD_EV_ET
        if enabled { interest |= HERALD_EV_OUT }
        _ = herald_epoll_ctl(epollFD, HERALD_EPOLL_MOD, peer.pointee.fd, interest, UInt64(peer.pointee.slot))
    }

    private func closePeer(_ peer: PeerPointer, reason: String) {
        guard peer.pointee.state != .closed else { return }
        close(peer.pointee.fd)  // also removes it from the epoll set
        core.remove(peer, reason: reason)
    }

    // MARK: - Signals

    private func handleSignals() {
        while true {
            let signal = herald_signalfd_read(signalFD)
            if signal == 0 { return }
            if signal == SIGHUP {
                logger.notice("SIGHUP received; there is no configuration to reload yet")
                continue
            }
            guard !stopping else { continue }
            stopping = true
            stopSignal = signal
            logger.notice("stopping: no new connections; flushing queued messages",
                metadata: ["signal": "\(signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "\(signal)")",
                    "peers": "\(core.peerCount)"])
            onStopping?()
            for listener in listeners {
                _ = herald_epoll_ctl(epollFD, HERALD_EPOLL_DEL, listener.fd, 0, 0)
                listener.close()
            }
            core.beginShutdown(now: MonotonicClock.now())
        }
    }
}
