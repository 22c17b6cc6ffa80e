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
    /// Connections accepted from one listener per wakeup before peers get a turn, so a
    /// connection flood cannot starve routing.
    private static let acceptsPerTurn = 64
    /// Waiting connections refused per listener when descriptors run out (each an accept,
    /// one write and a close on the reserve descriptor).
    private static let refusalsPerTurn = 1024
    /// Size of the shared read buffer: large enough that a busy publisher's socket buffer
    /// drains in one or two reads.
    private static let readBufferSize = 256 << 10
    /// Longest sleep in `epoll_wait` with nothing to do (milliseconds); timers are
    /// checked at least this often.
    private static let idleWaitMilliseconds = 500
    /// How often the core's deadlines (handshake, frame, linger) are checked, in seconds.
    private static let sweepInterval = 1.0
    /// Epoll user data: the top bits tag listeners and the signalfd, the low bits hold the
    /// listener's position or the peer's slot.
    private static let positionMask: UInt64 = 0xFFFF
    /// Peers with data still unread (budget exhausted, or resumed after a pause).
    private var pendingReads: [PeerPointer] = []
    // Work lists swapped with the core's each wakeup; kept as fields so their storage is
    // reused instead of reallocated.
    private var readBatch: [PeerPointer] = []
    private var resumedBatch: [PeerPointer] = []
    private var touchedBatch: [PeerPointer] = []
    /// A descriptor held in reserve so accept can still refuse the backlog at EMFILE.
    private var reserveFD: Int32
    /// When to watch the listeners again after descriptors ran out.
    private var acceptBackoff = AcceptBackoff()
    /// Listeners (by position) whose backlog was not drained because their turn ran out;
    /// edge-triggered epoll will not report them again, so the loop comes back to them.
    private var pendingAccepts: [Int] = []
    /// Other accept failures (ENOMEM, …) are logged at most once a second.
    private var acceptErrorLog = LogRateLimiter(interval: 1)
    /// Monotonic time of the current loop iteration, read once per wakeup.
    private var now = 0.0
    private var stopping = false
    private var stopSignal: Int32 = 0
    /// Called once every listener is live (e.g. sd_notify READY=1).
    public var onReady: (() -> Void)?
    /// Called when shutdown begins (e.g. sd_notify STOPPING=1).
    public var onStopping: (() -> Void)?

    private static let listenerTag: UInt64 = 1 << 62
    private static let signalTag: UInt64 = 1 << 61

    /// Creates a server for `core` over already-bound `listeners`.
    public init(core: BrokerCore, listeners: [Listener], logger: Logger) throws(ServerError) {
        self.core = core
        self.listeners = listeners
        self.logger = logger
        herald_ignore_sigpipe()
        epollFD = herald_epoll_create()
        guard epollFD >= 0 else { throw .cannotCreateEventLoop(errno: herald_errno()) }
        signalFD = herald_signalfd_for_shutdown()
        guard signalFD >= 0 else { throw .cannotWatchSignals(errno: herald_errno()) }
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        readBuffer = .allocate(byteCount: EpollServer.readBufferSize, alignment: 16)
        events = .allocate(capacity: Int(EpollServer.eventCapacity))
        for position in listeners.indices {
            guard watchListener(at: position) else { throw .cannotWatchListener(listeners[position].address.description, errno: herald_errno()) }
        }
        guard herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, signalFD, HERALD_EV_IN, EpollServer.signalTag) == 0 else {
            throw .cannotWatchSignals(errno: herald_errno())
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
    /// the shutdown grace period), closes every peer and returns. Never blocks anywhere but
    /// in `epoll_wait`, whatever peers do and whatever resources run out, so signals are
    /// always handled.
    public func run() -> Exit {
        onReady?()
        now = MonotonicClock.now()
        var nextSweep = now + EpollServer.sweepInterval
        while true {
            let count = herald_epoll_wait(epollFD, events, EpollServer.eventCapacity, waitTimeout(nextSweep: nextSweep))
            now = MonotonicClock.now()
            // Backlogs left from the last turn first, so a listener gets at most two turns per wakeup.
            serviceBacklogs()
            for position in 0..<Int(max(count, 0)) {
                let event = events[position]
                if event.data & EpollServer.listenerTag != 0 {
                    acceptConnections(listenerAt: Int(event.data & EpollServer.positionMask))
                } else if event.data == EpollServer.signalTag {
                    handleSignals()
                } else {
                    handlePeerEvent(slot: PeerSlot(truncatingIfNeeded: event.data), events: event.events)
                }
            }
            servicePendingReads()
            flushTouched()
            if now >= nextSweep || stopping {
                nextSweep = now + EpollServer.sweepInterval
                for peer in core.expireDeadlines(now: now) { closePeer(peer, reason: "closing deadline passed") }
                flushTouched()
            }
            if acceptBackoff.shouldResume(now: now) && !stopping { resumeListeners() }
            // Closed peers are freed only here, once no list of this iteration points at them.
            pendingReads.removeAll { $0.pointee.state == .closed }
            core.freeRemovedPeers()
            if stopping && core.peerCount == 0 { break }
        }
        return .signalled(stopSignal)
    }

    /// Milliseconds `epoll_wait` may sleep: not at all with work pending, else until the
    /// next sweep or listener retry, and never longer than the idle wait.
    private func waitTimeout(nextSweep: Double) -> Int32 {
        if !pendingReads.isEmpty || !pendingAccepts.isEmpty || core.hasPendingWork { return 0 }
        let until = min(nextSweep, acceptBackoff.resumeAt) - MonotonicClock.now()
        let milliseconds = min(Double(EpollServer.idleWaitMilliseconds), max(0, until * 1000).rounded(.up))
        return Int32(milliseconds)
    }

    // MARK: - Accepting

    @discardableResult
    private func watchListener(at position: Int) -> Bool {
        herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, listeners[position].fd, HERALD_EV_IN | HERALD_EV_ET,
            EpollServer.listenerTag | UInt64(position)) == 0
    }

    /// Accepts waiting connections, at most ``acceptsPerTurn`` before peers get a turn.
    private func acceptConnections(listenerAt position: Int) {
        guard !stopping, !acceptBackoff.isPaused else { return }
        let listener = listeners[position]
        for _ in 0..<EpollServer.acceptsPerTurn {
            let fd = herald_accept(listener.fd)
            if fd >= 0 {
                admit(fd)
                continue
            }
            let code = herald_errno()
            switch code {
            case EAGAIN, EWOULDBLOCK:
                if let episode = acceptBackoff.drained(now: now) {
                    logger.notice(
                        "accepting connections again: file descriptors are available",
                        metadata: ["refused": "\(episode.refused)", "seconds": "\(episode.seconds)", "open": "\(core.peerCount)"])
                }
                return
            case ECONNABORTED, EPROTO:
                continue  // That client gave up while waiting; the next one may not have.
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                descriptorsExhausted(code: code)
                return
            default:
                if let heldBack = acceptErrorLog.admit(now: now) {
                    logger.error("accept failed; retrying shortly",
                        metadata: ["error": "\(String(cString: strerror(code)))", "errors_not_logged": "\(heldBack)"])
                }
                pauseListeners()
                _ = acceptBackoff.exhausted(now: now, refused: 0)
                return
            }
        }
        pendingAccepts.append(position)
    }

    /// Continues accepting on listeners whose turn ran out.
    private func serviceBacklogs() {
        guard !pendingAccepts.isEmpty else { return }
        let positions = pendingAccepts
        pendingAccepts.removeAll(keepingCapacity: true)
        for position in positions { acceptConnections(listenerAt: position) }
    }

    /// Registers an accepted socket with the core. A refused connection is written once and
    /// closed at once, without ever becoming a peer: refusals cost no lasting descriptor.
    private func admit(_ fd: Int32) {
        var raw = herald_peer_credentials()
        guard herald_peer_credentials_of(fd, &raw) == 0 else {
            logger.warning("SO_PEERCRED failed; closing connection", metadata: ["error": "\(String(cString: strerror(herald_errno())))"])
            close(fd)
            return
        }
        let credentials = PeerCredentials(pid: UInt32(bitPattern: raw.pid), uid: raw.uid, gid: raw.gid)
        if let refusal = core.refusalFrame(for: credentials, now: now) {
            // One non-blocking write (a small ERROR always fits an empty socket buffer), then close.
            refusal.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
            close(fd)
            return
        }
        let peer = core.connect(fd: fd, credentials: credentials, now: now)
        let interest = (HERALD_EV_IN | HERALD_EV_RDHUP) | HERALD_EV_ET
        if herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, fd, interest, UInt64(peer.pointee.slot)) != 0 {
            let reason = String(cString: strerror(herald_errno()))
            logger.error("cannot watch a new connection; refusing it", metadata: ["error": "\(reason)"])
            core.refuse(peer, .tooManyConnections, "the broker cannot watch more connections (\(reason))")
            flush(peer)
        }
    }

    /// Out of descriptors (or kernel memory): refuse what waits in every backlog with a
    /// `too_many_connections` ERROR, using the reserve descriptor, and stop watching the
    /// listeners until ``AcceptBackoff`` says to look again. Logged once per episode.
    private func descriptorsExhausted(code: Int32) {
        var refused = 0
        if reserveFD >= 0 {
            close(reserveFD)
            for listener in listeners {
                for _ in 0..<EpollServer.refusalsPerTurn {
                    let fd = herald_accept(listener.fd)
                    if fd < 0 { break }
                    EpollServer.outOfDescriptorsRefusal.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
                    close(fd)
                    refused += 1
                }
            }
            reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        }
        core.recordConnectionsShed(refused)
        pauseListeners()
        if acceptBackoff.exhausted(now: now, refused: refused) {
            logger.error(
                "out of file descriptors: refusing new connections until some close",
                metadata: ["error": "\(String(cString: strerror(code)))", "open": "\(core.peerCount)",
                    "refused_now": "\(refused)", "retry_in": "\(AcceptBackoff.initialDelay)s"])
        }
    }

    /// The ERROR a connection refused for lack of descriptors gets: encoded once, written
    /// with one non-blocking write.
    private static let outOfDescriptorsRefusal = FrameEncoder.encode(
        .error(ErrorFrame(code: ErrorCode.tooManyConnections.rawValue, isFatal: true, requestID: 0,
            message: "the broker is out of file descriptors; try again later")))

    private func pauseListeners() {
        pendingAccepts.removeAll()
        for listener in listeners where herald_epoll_ctl(epollFD, HERALD_EPOLL_DEL, listener.fd, 0, 0) != 0 {
            logger.error("cannot stop watching a listener",
                metadata: ["address": "\(listener.address)", "error": "\(String(cString: strerror(herald_errno())))"])
        }
    }

    /// Watches the listeners again; epoll reports at once any backlog that built up meanwhile.
    private func resumeListeners() {
        acceptBackoff.resumed()
        for position in listeners.indices where !watchListener(at: position) {
            logger.error("cannot watch a listener again; retrying shortly",
                metadata: ["address": "\(listeners[position].address)", "error": "\(String(cString: strerror(herald_errno())))"])
            pauseListeners()
            _ = acceptBackoff.exhausted(now: now, refused: 0)
            return
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
                core.receive(peer, UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: n), now: now)
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
            core.beginClosing(peer, reason: reason, now: now)
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
            core.processBufferedInput(peer, now: now)
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

    /// Writes `peer`'s queued output until the socket is full. A closing peer is closed once
    /// its output is written, or after this one attempt if it may not linger.
    private func flush(_ peer: PeerPointer) {
        let fd = peer.pointee.fd
        let wasBackedUp = peer.pointee.waitingForWritable
        var full = false
        while !peer.pointee.output.isEmpty {
            let n = write(fd, peer.pointee.output.readPointer, peer.pointee.output.count)
            if n > 0 {
                peer.pointee.output.consume(n)
                continue
            }
            let code = herald_errno()
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                full = true
                break
            }
            closePeer(peer, reason: "write failed: \(String(cString: strerror(code)))")
            return
        }
        if peer.pointee.state == .closing && (peer.pointee.output.isEmpty || peer.pointee.closeImmediately) {
            closePeer(peer, reason: peer.pointee.closeReason)
            return
        }
        // Socket full: ask for EPOLLOUT only now, so fast consumers cost no extra wakeups.
        if full != wasBackedUp { watchWritable(peer, full) }
        core.didWrite(peer)
    }

    private func watchWritable(_ peer: PeerPointer, _ enabled: Bool) {
        peer.pointee.waitingForWritable = enabled
        var interest = (HERALD_EV_IN | HERALD_EV_RDHUP) | HERALD_EV_ET
        if enabled { interest |= HERALD_EV_OUT }
        if herald_epoll_ctl(epollFD, HERALD_EPOLL_MOD, peer.pointee.fd, interest, UInt64(peer.pointee.slot)) != 0 {
            // Without the watch the peer's output would never be written again.
            let reason = String(cString: strerror(herald_errno()))
            logger.error("cannot change what is watched on a connection; closing it", metadata: ["peer": "\(peer.pointee.id)", "error": "\(reason)"])
            closePeer(peer, reason: "epoll_ctl failed: \(reason)")
        }
    }

    private func closePeer(_ peer: PeerPointer, reason: String) {
        guard peer.pointee.state != .closed else { return }
        close(peer.pointee.fd)  // also removes it from the epoll set
        core.remove(peer, reason: reason)
        acceptBackoff.descriptorFreed(now: now)
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
            // Closing a listener also removes it from the epoll set, paused or not.
            for listener in listeners { listener.close() }
            pendingAccepts.removeAll()
            core.beginShutdown(now: now)
        }
    }
}
