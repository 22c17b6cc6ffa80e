import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The I/O thread of one connection: connects, performs the handshake, then runs an epoll
/// loop over the socket and the wake-up eventfd until the connection ends.
///
/// Everything here runs on that one thread, so the class needs no locks of its own; it
/// talks to tasks only through ``Connection`` (outgoing buffer, pending requests) and
/// ``SubscriptionState`` (delivery). Hot path: `readAvailable` → `parseFrames`, which reads
/// MESSAGE frames in place from the read buffer (unsafe pointers, fenced in those two
/// functions) and copies each matching frame, as it is, into the subscription's
/// ``DeliveryBuffer``; the consuming task makes the ``Message`` values.
final class IOLoop {
    /// How long close() waits for the broker's GOODBYE before giving up.
    static let closeTimeout: Duration = .seconds(2)
    /// Initial read buffer size; it grows only for a frame larger than this.
    static let readBufferSize = 256 << 10
    /// Socket reads per readiness event before the loop services writes again.
    static let readsPerEvent = 8

    static let wakeToken: UInt64 = 0
    static let socketToken: UInt64 = 1
    static let eventIn = UInt32(truncatingIfNeeded: HERALD_EV_IN)
    static let eventOut = UInt32(truncatingIfNeeded: HERALD_EV_OUT)
    static let eventErr = UInt32(truncatingIfNeeded: HERALD_EV_ERR)
    static let eventHup = UInt32(truncatingIfNeeded: HERALD_EV_HUP)
    static let eventRdHup = UInt32(truncatingIfNeeded: HERALD_EV_RDHUP)

    /// A subscription as the I/O thread sees it: the shared state plus the frames staged
    /// for it during the current batch.
    struct Target {
        let state: SubscriptionState
        /// The filters the broker confirmed.
        let filters: [TopicFilter]
        var staged: DeliveryBuffer
    }

    let connection: Connection
    /// The socket: the connection's first, then one per reconnect (this thread owns and closes it).
    var socket: Int32
    var handshake: CheckedContinuation<Result<Welcome, HeraldError>, Never>?
    var maxFrameSize = ProtocolLimits.maxFrameSizeCeiling
    var epollFD: Int32 = -1

    /// Bytes read from the socket; frames are parsed in place between `readStart` and `readEnd`.
    var readStorage = ByteStorage(capacity: IOLoop.readBufferSize)
    /// `readStorage`'s memory and size as plain fields, refreshed when it grows: the hot path
    /// reads these (borrowing the noncopyable storage costs a dynamic exclusivity check).
    var readBuffer: UnsafeMutableRawPointer
    var readCapacity = IOLoop.readBufferSize
    var readStart = 0
    var readEnd = 0

    var writing = OutgoingBuffer()
    var writeOffset = 0
    /// The last write hit EAGAIN: wait for EPOLLOUT.
    var waitingForWritable = false
    var registeredEvents: UInt32 = 0

    var targets: [Target] = []
    var touched: [Int] = []
    var knownSubscriptionsVersion: UInt64 = .max
    /// One-entry route cache: the last topic seen and the targets it matched.
    var cachedTopic: [UInt8] = []
    var cachedTargets: [Int] = []
    var cacheValid = false
    /// Counts the routes made, to tag runs of messages on one topic.
    var topicRuns = 0

    /// Whether the socket is read with room for descriptors (the bus announced `fds`).
    let acceptsDescriptors: Bool
    /// Descriptors received and not yet taken by the frame that announced them, from
    /// `receivedDescriptorsHead` on (see IOLoopDescriptors.swift).
    var receivedDescriptors: [Int32] = []
    var receivedDescriptorsHead = 0
    /// A read brought more descriptors than fit: the kernel closed some.
    var descriptorsTruncated = false
    /// Where one read's descriptors land.
    var receiveSpace = [Int32](repeating: -1, count: IOLoop.descriptorSpace)

    /// Messages the broker reported dropped that no delivered message has carried yet.
    var pendingDropped: UInt64 = 0
    /// Reading is paused because these subscriptions are over their buffer limit.
    var blockingSubscriptions: [SubscriptionState] = []
    var closeDeadline: ContinuousClock.Instant?
    var finished = false
    /// Why the session ended when the bus is to reconnect (set instead of ending the connection).
    var lostReason: HeraldError?
    /// The last handshake failed because the broker went away or was busy, not because it
    /// refused this client: worth another try (see ``retryInterruptedHandshake(_:)``).
    var handshakeInterrupted = false

    init(connection: Connection, handshake: CheckedContinuation<Result<Welcome, HeraldError>, Never>) {
        self.connection = connection
        self.socket = connection.socket
        self.handshake = handshake
        acceptsDescriptors = connection.options.acceptsFileDescriptors
        readBuffer = readStorage.base.unsafelyUnwrapped
    }

    /// Reports a failure to start the thread to the waiting connect().
    func failToStart(_ error: HeraldError) {
        handshake?.resume(returning: .failure(error))
        handshake = nil
    }

    /// The thread body.
    func run() {
        _ = herald_set_thread_name("herald-io")
        let result = retryInterruptedHandshake(performHandshake())
        switch result {
        case .success:
            connection.didOpen()
            handshake?.resume(returning: result)
            handshake = nil
            runLoop()
            // A lost broker: reconnect and run the new session, as long as it takes.
            while let reason = lostReason {
                lostReason = nil
                guard reconnect(after: reason) else { break }
                runLoop()
            }
        case .failure:
            handshake?.resume(returning: result)
            handshake = nil
        }
        if epollFD >= 0 { close(epollFD) }
        close(socket)
        closeQueuedDescriptors()
        connection.threadDidExit()
    }

    // MARK: - Event loop

    func runLoop() {
        // Frames that arrived together with WELCOME.
        if readEnd > readStart { parseFrames() }
        var events = [herald_event](repeating: herald_event(), count: 8)
        while !finished {
            if closeDeadline == nil && connection.closeRequested.load(ordering: .acquiring) { beginClose() }
            flushOutput()
            if finished { break }
            updateInterest()
            var timeout: Int32 = -1
            // Requests time out here, not in a task each: the earliest deadline bounds the wait.
            let callDeadline = connection.earliestCallDeadline.load(ordering: .acquiring)
            if callDeadline != .max {
                let now = connection.nanosecondsNow()
                if now >= callDeadline {
                    connection.expireCalls(now: now)
                    continue
                }
                timeout = Int32(clamping: (callDeadline - now) / 1_000_000 + 1)
            }
            if let closeDeadline {
                let remaining = ContinuousClock.now.duration(to: closeDeadline)
                if remaining <= .zero {
                    finish(reason: nil, failSubscriptions: false)
                    break
                }
                let closeTimeout = Int32(clamping: milliseconds(remaining) + 1)
                timeout = timeout < 0 ? closeTimeout : min(timeout, closeTimeout)
            }
            let count = events.withUnsafeMutableBufferPointer {
                herald_epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout)
            }
            if count < 0 {
                finish(reason: .connectionLost("epoll_wait failed: \(systemErrorDescription(herald_errno()))"), failSubscriptions: true)
                break
            }
            for index in 0..<Int(count) where !finished {
                let event = events[index]
                if event.data == IOLoop.wakeToken {
                    _ = herald_eventfd_drain(connection.wakeFD)
                    releasePauseIfPossible()
                    continue
                }
                if event.events & IOLoop.eventOut != 0 { waitingForWritable = false }
                let hangUp = event.events & (IOLoop.eventErr | IOLoop.eventHup | IOLoop.eventRdHup) != 0
                if hangUp || event.events & IOLoop.eventIn != 0 {
                    readAvailable(draining: hangUp)
                }
            }
        }
    }

    /// Whether reading is paused: a subscription is over its buffer limit and no reply is
    /// awaited (see ``Connection/awaitsReply``).
    var isPaused: Bool { !blockingSubscriptions.isEmpty && !connection.awaitsReply }

    /// close() was called: GOODBYE is queued; wait a bounded time for the broker's answer.
    func beginClose() {
        closeDeadline = ContinuousClock.now + IOLoop.closeTimeout
        // The subscriptions are ending anyway: read on so the broker's GOODBYE gets through.
        blockingSubscriptions.removeAll()
    }

    func updateInterest() {
        var wanted: UInt32 = isPaused ? 0 : IOLoop.eventIn | IOLoop.eventRdHup
        if waitingForWritable { wanted |= IOLoop.eventOut }
        guard wanted != registeredEvents else { return }
        if herald_epoll_ctl(epollFD, HERALD_EPOLL_MOD, socket, wanted, IOLoop.socketToken) == 0 { registeredEvents = wanted }
    }

    /// Resumes reading once every subscription that paused it has been drained.
    func releasePauseIfPossible() {
        guard !blockingSubscriptions.isEmpty else { return }
        blockingSubscriptions.removeAll { !$0.isBlockingReader }
    }

}
