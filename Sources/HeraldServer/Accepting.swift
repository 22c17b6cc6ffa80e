import CHeraldSys
import HeraldCore
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Accepting connections: admission before a connection becomes a peer, bounded turns so a
/// connection flood cannot starve routing, and what happens when file descriptors run out
/// (PROTOCOL.md §5.2): the backlog is refused with a reason on the reserve descriptor and
/// the listeners rest while connected peers are served.
extension EpollServer {
    /// Connections accepted from one listener per wakeup before peers get a turn.
    static let acceptsPerTurn = 64
    /// Waiting connections refused per listener when descriptors run out (each an accept,
    /// one write and a close on the reserve descriptor).
    static let refusalsPerTurn = 1024


    @discardableResult
    func watchListener(at position: Int) -> Bool {
        herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, listeners[position].fd, HERALD_EV_IN | HERALD_EV_ET,
            EpollServer.listenerTag | UInt64(position)) == 0
    }

    /// Accepts waiting connections, at most ``acceptsPerTurn`` before peers get a turn.
    func acceptConnections(listenerAt position: Int) {
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
    func serviceBacklogs() {
        guard !pendingAccepts.isEmpty else { return }
        let positions = pendingAccepts
        pendingAccepts.removeAll(keepingCapacity: true)
        for position in positions { acceptConnections(listenerAt: position) }
    }

    /// Registers an accepted socket with the core. A refused connection is written once and
    /// closed at once, without ever becoming a peer: refusals cost no lasting descriptor.
    func admit(_ fd: Int32) {
        var raw = herald_peer_credentials()
        guard herald_peer_credentials_of(fd, &raw) == 0 else {
            logger.warning("SO_PEERCRED failed; closing connection", metadata: ["error": "\(String(cString: strerror(herald_errno())))"])
            close(fd)
            return
        }
        let credentials = PeerCredentials(pid: UInt32(bitPattern: raw.pid), uid: raw.uid, gid: raw.gid)
        let groups = Self.supplementaryGroups(of: fd)
        if let refusal = core.refusalFrame(for: credentials, groups: groups, now: now) {
            // One non-blocking write (a small ERROR always fits an empty socket buffer), then close.
            refusal.withUnsafeBytes { _ = write(fd, $0.baseAddress, $0.count) }
            close(fd)
            return
        }
        let slot = core.connect(credentials: credentials, groups: groups, now: now)
        sockets[slot] = SocketTable.Socket(fd: fd)
        watchProcess(of: slot, socket: fd, pid: raw.pid)
        if herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, fd, EpollServer.peerInterest, UInt64(slot)) != 0 {
            let reason = String(cString: strerror(herald_errno()))
            logger.error("cannot watch a new connection; refusing it", metadata: ["error": "\(reason)"])
            core.refuse(slot, .tooManyConnections, "the broker cannot watch more connections (\(reason))")
            writeOutput(of: slot)
        }
    }

    /// Keeps a pidfd for the process that connected and watches it, so the broker learns
    /// when that process exits while its connection lives on (inherited or passed to another
    /// process): its deliveries then stop naming a pid that may be reused (``BrokerCore/processExited(_:)``).
    /// Without one (old kernel, or no descriptor to spare) the connection is served as before.
    func watchProcess(of slot: PeerSlot, socket fd: Int32, pid: Int32) {
        let pidfd = herald_peer_pidfd(fd, pid)
        guard pidfd >= 0 else { return }
        guard herald_epoll_ctl(epollFD, HERALD_EPOLL_ADD, pidfd, HERALD_EV_IN, EpollServer.processTag | UInt64(slot)) == 0 else {
            close(pidfd)
            return
        }
        sockets[slot].pidfd = pidfd
    }

    /// The peer's supplementary groups as the kernel recorded them at connect (SO_PEERGROUPS),
    /// for the policy's group rules. Empty when the kernel cannot say (before Linux 4.13):
    /// group rules then match the primary group only.
    static func supplementaryGroups(of fd: Int32) -> [UInt32] {
        var groups = [UInt32](repeating: 0, count: 32)
        var count = groups.withUnsafeMutableBufferPointer { herald_peer_groups_of(fd, $0.baseAddress, Int32($0.count)) }
        if count > Int32(groups.count) {
            groups = [UInt32](repeating: 0, count: Int(count))
            count = groups.withUnsafeMutableBufferPointer { herald_peer_groups_of(fd, $0.baseAddress, Int32($0.count)) }
        }
        guard count > 0 else { return [] }
        return Array(groups.prefix(Int(min(count, Int32(groups.count)))))
    }

    /// Out of descriptors (or kernel memory): refuse what waits in every backlog with a
    /// `too_many_connections` ERROR, using the reserve descriptor, and stop watching the
    /// listeners until ``AcceptBackoff`` says to look again. Logged once per episode.
    func descriptorsExhausted(code: Int32) {
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
    static let outOfDescriptorsRefusal = FrameEncoder.encode(
        .error(ErrorFrame(code: ErrorCode.tooManyConnections.rawValue, isFatal: true, requestID: 0,
            message: "the broker is out of file descriptors; try again later")))

    func pauseListeners() {
        pendingAccepts.removeAll()
        for listener in listeners where herald_epoll_ctl(epollFD, HERALD_EPOLL_DEL, listener.fd, 0, 0) != 0 {
            logger.error("cannot stop watching a listener",
                metadata: ["address": "\(listener.address)", "error": "\(String(cString: strerror(herald_errno())))"])
        }
    }

    /// Watches the listeners again; epoll reports at once any backlog that built up meanwhile.
    func resumeListeners() {
        acceptBackoff.resumed()
        for position in listeners.indices where !watchListener(at: position) {
            logger.error("cannot watch a listener again; retrying shortly",
                metadata: ["address": "\(listeners[position].address)", "error": "\(String(cString: strerror(herald_errno())))"])
            pauseListeners()
            _ = acceptBackoff.exhausted(now: now, refused: 0)
            return
        }
    }
}
