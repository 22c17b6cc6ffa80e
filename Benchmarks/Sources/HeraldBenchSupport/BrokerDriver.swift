import HeraldCore
import HeraldProtocol

/// An ``InMemoryBroker`` with clients that have completed the handshake, and helpers to
/// subscribe them and to build PUBLISH batches. Everything here runs in a benchmark's setup;
/// only `feed` (of a ``PublishBatch``) and `drain` run in the measured loops.
public final class BrokerDriver {
    public typealias Peer = InMemoryBroker.PeerHandle

    public let broker: InMemoryBroker

    /// A driver over a broker with `configuration`.
    public init(configuration: BrokerConfiguration = BrokerConfiguration()) {
        broker = InMemoryBroker(configuration: configuration)
    }

    /// Connects a client and completes its handshake (HELLO, then WELCOME drained).
    public func connectClient(_ name: String) -> Peer {
        let peer = broker.connect()
        broker.feed(peer, FrameEncoder.encode(.hello(Hello(clientName: name))))
        let reply = broker.drainFrames(peer)
        guard case .welcome = reply.first, reply.count == 1 else { fatalError("\(name): expected WELCOME, got \(reply)") }
        return peer
    }

    /// Subscribes `peer` to every filter in one read's worth of SUBSCRIBE frames and checks
    /// that each got its OK.
    public func subscribe(_ peer: Peer, to filters: [String]) {
        var bytes: [UInt8] = []
        for (id, filter) in filters.enumerated() {
            let id = UInt32(id)
            FrameEncoder.encode(.subscribe(Subscribe(requestID: id, subscriptionID: id, filter: filter)), into: &bytes)
        }
        broker.feed(peer, bytes)
        let replies = broker.drainFrames(peer)
        let expected = (0..<UInt32(filters.count)).map { Frame.ok(requestID: $0) }
        guard replies == expected else { fatalError("subscribing to \(filters.count) filters failed: \(replies.prefix(3))") }
    }

    /// Feeds `batch` from `publisher` as one read, then drains every subscriber as the server
    /// writes every touched peer after each read. Returns the bytes drained.
    @inline(__always)
    @discardableResult
    public func route(_ batch: PublishBatch, from publisher: Peer, drain subscribers: [Peer]) -> Int {
        broker.feed(publisher, batch.bytes)
        var drained = 0
        for subscriber in subscribers { drained &+= broker.drain(subscriber) }
        return drained
    }

    /// MESSAGE frames the core has queued to subscribers since it started.
    public var delivered: UInt64 { broker.core.statistics.messagesDelivered }
}

/// PUBLISH frames encoded back to back, as one socket read would bring them in.
public final class PublishBatch {
    /// The frames, in memory that stays put for the benchmark's lifetime.
    public let bytes: UnsafeRawBufferPointer
    /// Number of frames.
    public let count: Int

    /// One PUBLISH per topic, each with `payload`.
    public init(topics: [String], payload: [UInt8]) {
        var encoded: [UInt8] = []
        for topic in topics {
            FrameEncoder.encode(.publish(Publish(topic: topic, payload: payload)), into: &encoded)
        }
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: encoded.count, alignment: 16)
        encoded.withUnsafeBytes { storage.copyMemory(from: $0) }
        bytes = UnsafeRawBufferPointer(storage)
        count = topics.count
    }

    deinit { bytes.deallocate() }
}

/// A 64-byte payload, the size every routing benchmark publishes.
public let payload64 = [UInt8](repeating: 0x5A, count: 64)

extension Policy {
    /// A policy of 100 rules that apply to every peer, none of them to the topics the
    /// benchmarks publish (`home/…`, `plant/…`): every check walks all of them and ends in
    /// the default (allow). Half deny publishing, half deny subscribing, so no check can be
    /// skipped as "nothing here can deny".
    public static let hundredRules: Policy = {
        let rules = (0..<100).map { index in
            PolicyRule(
                filter: try! TopicFilter(index % 3 == 0 ? "app\(index)/#" : index % 3 == 1 ? "app\(index)/+/state" : "+/app\(index)/x"),
                publish: index % 2 == 0 ? .deny : nil, subscribe: index % 2 == 1 ? .deny : nil,
                location: PolicyLocation(file: "bench.toml", line: index + 1))
        }
        return Policy(rules: rules)
    }()
}
