import CHeraldSys
import HeraldCore
import HeraldProtocol
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// The broker's event loop: one thread, edge-triggered epoll over nonblocking AF_UNIX
/// sockets, driving a ``BrokerCore``. Glibc's socket calls are used directly (through the
/// CHeraldSys shim) because the loop needs exact control of reads, writes and readiness:
/// each wakeup reads every readable peer into one shared buffer, lets the core route the
/// whole frames in place, then writes each peer with new output once.
///
/// The whole conversation with the core is in ``run()`` and the few functions below it:
/// read → ``BrokerCore/receive(_:_:now:)``; ``BrokerCore/takeWork(into:)`` → write
/// (``BrokerCore/pendingOutput(of:)``) → ``BrokerCore/finishWriting(_:)`` (close?) →
/// resume paused publishers → read again. Accepting is in `Accepting.swift`.
public final class EpollServer {
    /// Outcome of ``run()``.
    public enum Exit: Equatable, Sendable {
        /// Stopped by SIGINT/SIGTERM after flushing.
        case signalled(Int32)
        /// Stopped through a ``StopHandle`` after flushing.
        case stopRequested
        /// Stopped after ``exitWhenIdle`` seconds without a peer.
        case idle
    }

    /// Asks a running server to stop as SIGTERM would, from any thread (an embedding
    /// program's shutdown, a test). Valid while the server exists.
    public struct StopHandle: Sendable {
        fileprivate let fd: Int32

        /// Stop accepting, flush, say GOODBYE and return from ``EpollServer/run()``.
        public func requestStop() {
            _ = herald_eventfd_signal(fd)
        }
    }

    /// A handle that stops this server from another thread.
    public var stopHandle: StopHandle { StopHandle(fd: stopFD) }

    let core: BrokerCore
    let listeners: [Listener]
    let logger: Logger
    let epollFD: Int32
    private let signalFD: Int32
    /// Eventfd a ``StopHandle`` signals.
    private let stopFD: Int32
    /// Each connection's socket, by the core's slot.
    var sockets = SocketTable()
    /// One read buffer for every peer: complete frames are routed straight out of it.
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// Descriptors one `recvmsg` brought (at most the kernel's SCM_MAX_FD, 253).
    private let descriptorBuffer: UnsafeMutablePointer<Int32>
    private static let descriptorCapacity: Int32 = 253
    private var events: UnsafeMutablePointer<herald_event>
    /// Peers with data still unread (turn used up, or resumed after a pause).
    private var pendingReads: [PeerSlot] = []
    /// Lists swapped with the core's and this server's each wakeup, kept as fields so their
    /// storage is reused instead of reallocated.
    private var work = BrokerWork()
    private var readBatch: [PeerSlot] = []
    /// A descriptor held in reserve so accept can still refuse the backlog at EMFILE.
    var reserveFD: Int32
    /// When to watch the listeners again after descriptors ran out.
    var acceptBackoff = AcceptBackoff()
    /// Listeners (by position) whose backlog was not drained because their turn ran out;
    /// edge-triggered epoll will not report them again, so the loop comes back to them.
    var pendingAccepts: [Int] = []
    /// Accept failures other than running out of descriptors are logged at most once a second.
    var acceptErrorLog = LogRateLimiter(interval: 1)
    /// Monotonic time of the current loop iteration, read once per wakeup.
    var now = 0.0
    var stopping = false
    private var exit = Exit.stopRequested
    /// Called once every listener is live (e.g. sd_notify READY=1).
    public var onReady: (() -> Void)?
    /// Called when shutdown begins (e.g. sd_notify STOPPING=1).
    public var onStopping: (() -> Void)?
    /// Called on SIGHUP (e.g. reload, with RELOADING=1 and READY=1 around it). Without it,
    /// SIGHUP is logged and ignored.
    public var onReload: (() -> Void)?
    /// Called from the event loop at least every ``tickInterval`` seconds with the monotonic
    /// time (e.g. the watchdog ping and STATUS=): a loop that stops turning stops calling it.
    public var onTick: ((Double) -> Void)?
    /// Longest time between two ``onTick`` calls, in seconds.
    public var tickInterval = 1.0
    /// Stop (exit ``Exit/idle``) after this many seconds with no peer connected: for a
    /// socket-activated broker, whose listening socket stays with the service manager.
    public var exitWhenIdle: Double?
    /// Since when no peer has been connected (for ``exitWhenIdle``).
    private var idleSince: Double?

    /// Readiness events taken per `epoll_wait`.
    private static let eventCapacity: Int32 = 256
    /// Reads per peer per wakeup before others get a turn, so one fast publisher cannot
    /// starve the rest.
    private static let readsPerTurn = 4
    /// Size of the shared read buffer: large enough that a busy publisher's socket buffer
    /// drains in one or two reads.
    private static let readBufferSize = 256 << 10
    /// Longest sleep in `epoll_wait` with nothing to do (milliseconds); timers are
    /// checked at least this often.
    private static let idleWaitMilliseconds = 500
    /// How often the core's deadlines (handshake, frame, linger) are checked, in seconds.
    private static let sweepInterval = 1.0
    /// Rounds of write → resume → route per wakeup: writing can release paused publishers
    /// whose buffered input produces more output; a few rounds, then the next wakeup.
    private static let flushRounds = 4
    /// Epoll user data: bit 62 tags listeners, bit 61 the signalfd; the low bits hold the
    /// listener's position or, with no tag, the peer's slot.
    static let listenerTag: UInt64 = 1 << 62
    private static let signalTag: UInt64 = 1 << 61
    private static let stopTag: UInt64 = 1 << 60
    /// Tags a peer's pidfd; the low bits hold its slot.
    static let processTag: UInt64 = 1 << 59
    static let positionMask: UInt64 = 0xFFFF
    /// What a connected peer's socket is watched for: readable and peer hang-up, edge-triggered.
    static let peerInterest = (HERALD_EV_IN | HERALD_EV_RDHUP) | HERALD_EV_ET

    /// Creates a server for `core` over already-bound `listeners`.
    public init(core: BrokerCore, listeners: [Listener], logger: Logger) throws(ServerError) {
        self.core = core
        self.listeners = listeners
        self.logger = logger
        core.wallClock = MonotonicClock.wallNanoseconds
        core.processName = ProcessNames.comm
        herald_ignore_sigpipe()
        epollFD = herald_epoll_create()
        guard epollFD >= 0 else { throw .cannotCreateEventLoop(errno: herald_errno()) }
        signalFD = herald_signalfd_for_shutdown()
        guard signalFD >= 0 else { throw .cannotWatchSignals(errno: herald_errno()) }
        stopFD = herald_eventfd()
        guard stopFD >= 0 else { throw .cannotWatchSignals(errno: herald_errno()) }
        reserveFD = open("/dev/null", O_RDONLY | O_CLOEXEC)
        readBuffer = .allocate(byteCount: EpollServer.readBufferSize, alignment: 16)
        descriptorBuffer = .allocate(capacity: Int(EpollServer.descriptorCapacity))
        core.closeDescriptor = { descriptor in _ = close(descriptor) }
        events = .allocate(capacity: Int(EpollServer.eventCapacity))
        for position in listeners.indices {
            guard watchListener(at: position) else {
                throw .cannotWatchListener(listeners[position].address.description, errno: herald_errno())
            }
        }
        guard herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, signalFD, HERALD_EV_IN, EpollServer.signalTag) == 0,
            herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, stopFD, HERALD_EV_IN, EpollServer.stopTag) == 0
        else {
            throw .cannotWatchSignals(errno: herald_errno())
        }
    }

    deinit {
        readBuffer.deallocate()
        descriptorBuffer.deallocate()
        events.deallocate()
        close(epollFD)
        close(signalFD)
        close(stopFD)
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
        var nextTick = now
        while true {
            let wakeAt = min(nextSweep, nextTick, idleSince.map { $0 + (exitWhenIdle ?? .infinity) } ?? .infinity)
            let count = herald_epoll_wait(epollFD, events, EpollServer.eventCapacity, waitTimeout(until: wakeAt))
            now = MonotonicClock.now()
            // Backlogs left from the last turn first, so a listener gets at most two turns per wakeup.
            serviceBacklogs()
            for position in 0..<Int(max(count, 0)) {
                let event = events[position]
                if event.data & EpollServer.listenerTag != 0 {
                    acceptConnections(listenerAt: Int(event.data & EpollServer.positionMask))
                } else if event.data == EpollServer.signalTag {
                    handleSignals()
                } else if event.data & EpollServer.processTag != 0 {
                    processExited(slot: PeerSlot(truncatingIfNeeded: event.data & ~EpollServer.processTag))
                } else if event.data == EpollServer.stopTag {
                    _ = herald_eventfd_drain(stopFD)
                    beginStopping(.stopRequested, cause: "stop requested")
                } else {
                    handlePeerEvent(slot: PeerSlot(truncatingIfNeeded: event.data), events: event.events)
                }
            }
            continuePendingReads()
            flushWork()
            if now >= nextSweep || stopping {
                nextSweep = now + EpollServer.sweepInterval
                for slot in core.expireDeadlines(now: now) { closeSocket(of: slot, reason: "closing deadline passed") }
                flushWork()
            }
            if acceptBackoff.shouldResume(now: now) && !stopping { resumeListeners() }
            if now >= nextTick {
                nextTick = now + tickInterval
                onTick?(now)
            }
            checkIdle()
            // Slots of peers closed in this iteration are dropped here, before the core may reuse them.
            pendingReads.removeAll { core.readState(of: $0) == .gone }
            core.endIteration()
            if stopping && core.peerCount == 0 { break }
        }
        return exit
    }

    /// Milliseconds `epoll_wait` may sleep: not at all with work pending, else until `wakeAt`
    /// (the next sweep, tick or idle deadline) or the listener retry, and never longer than
    /// the idle wait.
    private func waitTimeout(until wakeAt: Double) -> Int32 {
        if !pendingReads.isEmpty || !pendingAccepts.isEmpty || core.hasPendingWork { return 0 }
        let until = min(wakeAt, acceptBackoff.resumeAt) - MonotonicClock.now()
        let milliseconds = min(Double(EpollServer.idleWaitMilliseconds), max(0, until * 1000).rounded(.up))
        return Int32(milliseconds)
    }

    // MARK: - Reading

    private func handlePeerEvent(slot: PeerSlot, events: UInt32) {
        guard core.readState(of: slot) != .gone else { return }
        if events & HERALD_EV_OUT != 0 { writeOutput(of: slot) }
        let hangup = events & (HERALD_EV_RDHUP | HERALD_EV_HUP | HERALD_EV_ERR) != 0
        if hangup || events & HERALD_EV_IN != 0 { readInput(of: slot, hangup: hangup) }
    }

    /// Reads until the socket is drained, the peer is paused, or its turn is used up. With
    /// `hangup` the peer has shut down its side: read on to end of stream even after a
    /// short read, because edge-triggered epoll will not report the hangup again.
    private func readInput(of slot: PeerSlot, hangup: Bool) {
        let fd = sockets[slot].fd
        for _ in 0..<EpollServer.readsPerTurn {
            let state = core.readState(of: slot)
            // A paused publisher is read again when ``BrokerWork/resumed`` lists it.
            if state == .gone || state == .paused { return }
            // recvmsg rather than read: a peer that announced `fds` may pass descriptors (room
            // for them is made only then), and for any other the kernel reports descriptors
            // it had to close (MSG_CTRUNC), which the peer is told about (PROTOCOL.md §4.22).
            let takesDescriptors = state == .reading && core.acceptsDescriptors(slot)
            var descriptorCount: Int32 = 0
            var truncated: Int32 = 0
            let n = herald_recv_stream(
                fd, readBuffer.baseAddress, readBuffer.count, takesDescriptors ? descriptorBuffer : nil, EpollServer.descriptorCapacity,
                &descriptorCount, &truncated)
            if n > 0 {
                // A closing peer's bytes are read only to notice end of stream.
                if descriptorCount > 0 || truncated != 0 {
                    receiveWithDescriptors(slot, state: state, count: n, descriptors: Int(descriptorCount), truncated: truncated != 0)
                } else if state == .reading {
                    core.receive(slot, UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: n), now: now)
                }
                // A short read means the socket buffer is drained for now; the next arrival
                // raises a new edge (saves one read per wakeup on the hot path). Not after
                // descriptors: the kernel ends a read at the bytes they came with.
                if n < readBuffer.count && !hangup && descriptorCount == 0 { return }
                continue
            }
            let code = herald_errno()
            if n < 0 && (code == EAGAIN || code == EINTR) { return }
            let reason = n == 0 ? "connection closed by peer" : "read failed: \(String(cString: strerror(code)))"
            // End of stream: what is still queued is written first (the peer may only have
            // shut down its writing side), unless it was closing already.
            if state == .discarding || core.ended(slot, reason: reason, now: now) { closeSocket(of: slot, reason: reason) }
            return
        }
        pendingReads.append(slot)
    }

    /// A read that brought descriptors, or lost some (MSG_CTRUNC): the core owns them from
    /// here (it closes what no frame takes) or learns that the peer's descriptors were lost.
    private func receiveWithDescriptors(_ slot: PeerSlot, state: PeerReadState, count: Int, descriptors: Int, truncated: Bool) {
        let received = UnsafeBufferPointer(start: descriptorBuffer, count: descriptors)
        guard state == .reading else {
            for descriptor in received { close(descriptor) }
            return
        }
        if truncated {
            for descriptor in received { close(descriptor) }
            core.descriptorsLost(slot)
            return
        }
        core.receive(slot, UnsafeRawBufferPointer(start: readBuffer.baseAddress, count: count), descriptors: received, now: now)
    }

    /// Continues reading peers whose turn ran out in an earlier round.
    private func continuePendingReads() {
        guard !pendingReads.isEmpty else { return }
        swap(&readBatch, &pendingReads)
        for slot in readBatch { readInput(of: slot, hangup: true) }
        readBatch.removeAll(keepingCapacity: true)
    }

    // MARK: - Writing

    /// Writes every peer with new output, once per round; writing can release paused
    /// publishers, whose kept input is routed and whose sockets are read again.
    private func flushWork() {
        for _ in 0..<EpollServer.flushRounds {
            core.takeWork(into: &work)
            if work.writable.isEmpty && work.resumed.isEmpty { return }
            for slot in work.writable { writeOutput(of: slot) }
            for slot in work.resumed where core.resumeReading(slot, now: now) {
                // Edge-triggered: the socket may hold data whose edge was spent while paused.
                pendingReads.append(slot)
            }
            work.removeAll()
            continuePendingReads()
        }
    }

    /// Writes the peer's queued output until the socket is full, then lets the core decide
    /// whether the socket is to be closed (a closing peer whose reason is written, or that
    /// may not linger).
    func writeOutput(of slot: PeerSlot) {
        let fd = sockets[slot].fd
        guard fd >= 0 else { return }
        var full = false
        while true {
            let output = core.pendingOutput(of: slot)
            if output.isEmpty { break }
            let n: Int
            if let pass = core.nextDescriptorPass(of: slot) {
                n = writeWithDescriptors(fd, output, pass)
                if n > 0 && pass.offset == 0 { core.descriptorsPassed(of: slot) }
            } else {
                n = write(fd, output.baseAddress, output.count)
            }
            if n > 0 {
                core.consumeOutput(of: slot, n)
                continue
            }
            let code = herald_errno()
            if n < 0 && code == EINTR { continue }
            if n < 0 && (code == EAGAIN || code == EWOULDBLOCK) {
                full = true
                break
            }
            closeSocket(of: slot, reason: "write failed: \(String(cString: strerror(code)))")
            return
        }
        if let reason = core.finishWriting(slot) {
            closeSocket(of: slot, reason: reason)
            return
        }
        // Socket full: ask for EPOLLOUT only now, so fast consumers cost no extra wakeups.
        if full != sockets[slot].waitingForWritable { watchWritable(slot, full) }
    }

    /// Writes pending output in which a frame carries descriptors: the bytes before that
    /// frame plainly, then the frame from its first byte with the descriptors (one SCM_RIGHTS
    /// message per frame, as PROTOCOL.md §4.22 requires), never past the next such frame.
    private func writeWithDescriptors(_ fd: Int32, _ output: UnsafeRawBufferPointer, _ pass: DescriptorPass) -> Int {
        if pass.offset > 0 { return write(fd, output.baseAddress, min(pass.offset, output.count)) }
        let length = min(output.count, pass.bytesUntilNextPass ?? output.count)
        return pass.descriptors.withUnsafeBufferPointer { descriptors in
            herald_send_with_fds(fd, output.baseAddress, length, descriptors.baseAddress, Int32(descriptors.count))
        }
    }

    private func watchWritable(_ slot: PeerSlot, _ enabled: Bool) {
        sockets[slot].waitingForWritable = enabled
        var interest = EpollServer.peerInterest
        if enabled { interest |= HERALD_EV_OUT }
        if herald_epoll_ctl(epollFD, HERALD_EPOLL_MOD, sockets[slot].fd, interest, UInt64(slot)) != 0 {
            // Without the watch the peer's output would never be written again.
            let reason = String(cString: strerror(herald_errno()))
            logger.error("cannot change what is watched on a connection; closing it", metadata: ["slot": "\(slot)", "error": "\(reason)"])
            closeSocket(of: slot, reason: "epoll_ctl failed: \(reason)")
        }
    }

    /// Closes the peer's socket (which also takes it out of the epoll set) and tells the core.
    func closeSocket(of slot: PeerSlot, reason: String) {
        let fd = sockets[slot].fd
        guard fd >= 0 else { return }
        close(fd)
        // Closing the pidfd also takes it out of the epoll set.
        if sockets[slot].pidfd >= 0 { close(sockets[slot].pidfd) }
        sockets[slot] = SocketTable.Socket()
        core.remove(slot, reason: reason)
        acceptBackoff.descriptorFreed(now: now)
    }

    /// The process that opened the connection in `slot` exited (its pidfd became readable)
    /// while the connection is still open: another process holds the socket now.
    private func processExited(slot: PeerSlot) {
        let pidfd = sockets[slot].pidfd
        guard pidfd >= 0 else { return }
        close(pidfd)
        sockets[slot].pidfd = -1
        core.processExited(slot)
    }

    // MARK: - Signals

    private func handleSignals() {
        while true {
            let signal = herald_signalfd_read(signalFD)
            if signal == 0 { return }
            if signal == SIGHUP {
                if let onReload { onReload() } else { logger.notice("SIGHUP received; nothing to reload") }
                continue
            }
            beginStopping(.signalled(signal), cause: signal == SIGTERM ? "SIGTERM" : signal == SIGINT ? "SIGINT" : "signal \(signal)")
        }
    }

    /// With ``exitWhenIdle``: starts stopping once no peer has been connected for that long.
    /// Stopping closes the listeners first, so a client that connects meanwhile waits in the
    /// (service manager's) backlog for the next instance instead of being accepted and dropped.
    private func checkIdle() {
        guard let exitWhenIdle, !stopping else { return }
        guard core.peerCount == 0 else {
            idleSince = nil
            return
        }
        let since = idleSince ?? now
        idleSince = since
        if now - since >= exitWhenIdle { beginStopping(.idle, cause: "no peers for \(exitWhenIdle) s") }
    }

    /// Stops accepting, says GOODBYE to every peer and lets the loop flush (bounded by the
    /// shutdown grace period) before ``run()`` returns `exit`.
    private func beginStopping(_ exit: Exit, cause: String) {
        guard !stopping else { return }
        stopping = true
        self.exit = exit
        logger.notice("stopping: no new connections; flushing queued messages", metadata: ["cause": "\(cause)", "peers": "\(core.peerCount)"])
        onStopping?()
        // Closing a listener also removes it from the epoll set, paused or not.
        for listener in listeners { listener.close() }
        pendingAccepts.removeAll()
        core.beginShutdown(now: now)
    }
}
