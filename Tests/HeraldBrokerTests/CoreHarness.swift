import HeraldProtocol
import Logging
import Testing

@testable import HeraldCore

/// Drives a ``BrokerCore`` with encoded frames and reads back what it queued, with no
/// sockets: ``InMemoryBroker``'s core, reached by peer pointer so tests can look inside.
final class CoreHarness {
    let broker: InMemoryBroker
    var core: BrokerCore { broker.core }
    var clock = 1000.0

    init(configure: (inout BrokerConfiguration) -> Void = { _ in }) {
        var configuration = BrokerConfiguration()
        configure(&configuration)
        broker = InMemoryBroker(configuration: configuration, brokerPID: 4242, brokerUID: 1000)
    }

    /// Opens a connection; with `hello` set, completes the handshake and checks the WELCOME.
    func connect(
        uid: UInt32 = 1000, pid: UInt32 = 77, name: String = "test", policy: SlowConsumerPolicy? = nil,
        outputLimit: UInt32 = 0, groups: [UInt32] = [], capabilities: UInt32 = 0, hello: Bool = true
    ) -> PeerPointer {
        let peer = core.connectPeer(credentials: PeerCredentials(pid: pid, uid: uid, gid: uid), groups: groups, now: clock)
        if hello {
            send(peer, .hello(Hello(slowConsumerPolicy: policy, outputLimit: outputLimit, capabilities: capabilities, clientName: name)))
            let frames = drain(peer)
            guard case .welcome = frames.first else {
                Issue.record("expected WELCOME, got \(frames)")
                return peer
            }
        }
        return peer
    }

    func send(_ peer: PeerPointer, _ frame: Frame) {
        send(peer, FrameEncoder.encode(frame))
    }

    func send(_ peer: PeerPointer, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { core.receive(peer, $0, now: clock) }
    }

    /// Subscribes and expects OK.
    func subscribe(_ peer: PeerPointer, _ filter: String, id: UInt32) {
        send(peer, .subscribe(Subscribe(requestID: id + 1000, subscriptionID: id, filter: filter)))
        #expect(drain(peer) == [.ok(requestID: id + 1000)])
    }

    func publish(_ peer: PeerPointer, _ topic: String, _ payload: [UInt8] = []) {
        send(peer, .publish(Publish(topic: topic, payload: payload)))
    }

    /// Decodes and removes everything queued for `peer`, as a server that wrote it all would
    /// (one frame per write: the core hears of each).
    func drain(_ peer: PeerPointer) -> [Frame] {
        let frames = InMemoryBroker.takeFrames(of: peer, from: core, reportingEachFrame: true)
        if !peer.pointee.output.isEmpty { Issue.record("partial frame left in output queue") }
        return frames
    }

    /// Payloads of the MESSAGE frames in `frames`.
    static func payloads(_ frames: [Frame]) -> [[UInt8]] {
        frames.compactMap { if case .message(let delivery) = $0 { delivery.payload } else { nil } }
    }

    /// The first ERROR in `frames`.
    static func firstError(_ frames: [Frame]) -> ErrorFrame? {
        frames.lazy.compactMap { if case .error(let error) = $0 { error } else { nil } }.first
    }
}

/// Copyable views of a peer for `#expect` (which cannot look through non-copyable values).
extension UnsafeMutablePointer where Pointee == Peer {
    var state: Peer.State { pointee.state }
    var peerID: UInt64 { pointee.id }
    var name: String { pointee.name }
    var queuedOutput: Int { pointee.output.count }
    var outputCapacity: Int { pointee.output.capacity }
    var hasBufferedInput: Bool { !pointee.input.isEmpty }
    var isReadPaused: Bool { pointee.isReadPaused }
    var totalDropped: UInt64 { pointee.totalDropped }
    var closesImmediately: Bool { pointee.closeImmediately }
}
