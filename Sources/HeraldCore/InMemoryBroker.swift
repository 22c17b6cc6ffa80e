import HeraldProtocol
import Logging

/// A ``BrokerCore`` driven without sockets: peers are handles, bytes go in with
/// ``feed(_:_:)`` and what the broker queued for a peer comes out of ``drain(_:into:)``.
/// For benchmarks of the routing core and for fuzzing the session state machine; it runs
/// exactly the code the epoll server runs, minus the system calls.
public final class InMemoryBroker {
    /// A connected peer.
    public struct PeerHandle: Hashable, Sendable {
        fileprivate let slot: Int32
        fileprivate let id: UInt64
    }

    /// The core being driven.
    public let core: BrokerCore
    private var clock = 0.0
    private var work = BrokerWork()

    /// Creates a broker with `configuration` whose own pid and uid (reported in WELCOME) are
    /// `brokerPID` and `brokerUID`.
    public init(configuration: BrokerConfiguration = BrokerConfiguration(), brokerPID: UInt32 = 1, brokerUID: UInt32 = 1000,
        logger: Logger = Logger(label: "herald.in-memory", factory: { _ in SwiftLogNoOpLogHandler() }))
    {
        core = BrokerCore(configuration: configuration, logger: logger, brokerPID: brokerPID, brokerUID: brokerUID)
        // A wall clock that starts at 2026-01-01 and moves with the in-memory clock.
        core.wallClock = { [unowned self] in InMemoryBroker.wallClockEpoch &+ UInt64(self.clock * 1e9) }
    }

    /// The in-memory wall clock's start: 2026-01-01T00:00:00Z, in nanoseconds since the Unix epoch.
    public static let wallClockEpoch: UInt64 = 1_767_225_600 * 1_000_000_000

    /// Connects a peer with the given credentials (no handshake yet).
    public func connect(pid: UInt32 = 100, uid: UInt32 = 1000, gid: UInt32 = 1000, groups: [UInt32] = []) -> PeerHandle {
        clock += 0.001
        let peer = core.connectPeer(credentials: PeerCredentials(pid: pid, uid: uid, gid: gid), groups: groups, now: clock)
        return PeerHandle(slot: peer.pointee.slot, id: peer.pointee.id)
    }

    private func pointer(_ handle: PeerHandle) -> PeerPointer? {
        guard let peer = core.peers[handle.slot], peer.pointee.id == handle.id,
            peer.pointee.state != .closed
        else { return nil }
        return peer
    }

    /// Whether the peer is still connected (not closed by the broker or by ``disconnect(_:)``).
    public func isOpen(_ handle: PeerHandle) -> Bool {
        guard let peer = pointer(handle) else { return false }
        return peer.pointee.isOpen
    }

    /// Feeds bytes as if read from the peer's socket, then resumes any publisher a drain released.
    public func feed(_ handle: PeerHandle, _ bytes: UnsafeRawBufferPointer) {
        guard let peer = pointer(handle) else { return }
        core.receive(peer, bytes, now: clock)
    }

    /// Feeds bytes as if read from the peer's socket.
    public func feed(_ handle: PeerHandle, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { feed(handle, $0) }
    }

    /// Bytes queued for the peer.
    public func queuedBytes(_ handle: PeerHandle) -> Int {
        pointer(handle)?.pointee.output.count ?? 0
    }

    /// Removes everything queued for the peer, as a socket that accepted it all would, and
    /// returns the number of bytes. With `into`, the bytes are appended there.
    @discardableResult
    public func drain(_ handle: PeerHandle, into sink: UnsafeMutableRawBufferPointer? = nil) -> Int {
        guard let peer = pointer(handle) else { return 0 }
        let count = peer.pointee.output.count
        if count > 0 {
            if let sink, let base = sink.baseAddress {
                base.copyMemory(from: peer.pointee.output.readPointer, byteCount: min(count, sink.count))
            }
            core.consumeOutput(of: peer, count)
        }
        core.didWrite(peer)
        return count
    }

    /// Whether each uid's queued-output total equals the bytes queued for its connections
    /// (an invariant the fuzz target checks after every step).
    public func queuedOutputIsConsistent() -> Bool {
        var sums: [UInt32: Int] = [:]
        for peer in core.peers.snapshot() where peer.pointee.state != .closed {
            sums[peer.pointee.credentials.uid, default: 0] += peer.pointee.output.count
        }
        return core.queuedOutputByUID.allSatisfy { uid, record in record.pointee.bytes == sums[uid, default: 0] }
            && sums.allSatisfy { uid, bytes in core.queuedOutputByUID[uid]?.pointee.bytes == bytes }
    }

    /// Decodes and removes everything queued for the peer.
    public func drainFrames(_ handle: PeerHandle) -> [Frame] {
        guard let peer = pointer(handle) else { return [] }
        return InMemoryBroker.takeFrames(of: peer, from: core, reportingEachFrame: false)
    }

    /// Decodes and removes the frames queued for `peer`, as a socket that took them all would,
    /// telling `core` after each frame (as a server whose writes each took one frame) or once.
    /// Stops at bytes that do not decode (there are none unless the core is broken).
    static func takeFrames(of peer: PeerPointer, from core: BrokerCore, reportingEachFrame: Bool) -> [Frame] {
        var frames: [Frame] = []
        while !peer.pointee.output.isEmpty {
            let bytes = UnsafeRawBufferPointer(start: peer.pointee.output.readPointer, count: peer.pointee.output.count)
            guard let decoded = try? FrameDecoder.decode(bytes) else { break }
            frames.append(decoded.frame)
            core.consumeOutput(of: peer, decoded.length)
            if reportingEachFrame { core.didWrite(peer) }
        }
        if !reportingEachFrame { core.didWrite(peer) }
        return frames
    }

    /// Lets time pass to `now` (monotonic seconds; the clock never goes back) and runs the
    /// broker's timers as the server's sweep does: handshake and frame timeouts, and closing
    /// peers whose linger ended are closed.
    public func advanceClock(to now: Double) {
        clock = max(clock, now)
        for slot in core.expireDeadlines(now: clock) { core.remove(slot, reason: "closing deadline passed") }
    }

    /// Closes the peer as if its socket ended.
    public func disconnect(_ handle: PeerHandle) {
        guard let peer = pointer(handle) else { return }
        core.remove(peer, reason: "disconnected by the in-memory driver")
    }

    /// Ends a batch as the server's loop iteration would: continues publishers released by
    /// drains, closes closing peers and frees closed ones.
    public func endBatch() {
        core.takeWork(into: &work)
        for slot in work.resumed { _ = core.resumeReading(slot, now: clock) }
        work.removeAll()
        for peer in core.peers.snapshot() where peer.pointee.state == .closing { core.remove(peer, reason: "closed") }
        core.endIteration()
    }
}
