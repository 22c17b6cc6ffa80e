import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Subscription index")
struct SubscriptionIndexTests {
    /// The trie must agree with `TopicFilter.matches` (the reference) on every topic,
    /// including after removals.
    @Test func agreesWithFilterMatchingOnRandomFiltersAndTopics() {
        var random = RandomTopics()
        func randomTopic() -> String { random.topic() }
        func randomFilter() -> String { random.filter() }
        let peers = (0..<8).map { n -> PeerPointer in
            let peer = PeerPointer.allocate(capacity: 1)
            peer.initialize(to: Peer.detached(slot: PeerSlot(n), id: UInt64(n)))
            return peer
        }
        defer { for peer in peers { peer.deinitialize(count: 1); peer.deallocate() } }

        for _ in 0..<20 {
            let index = SubscriptionIndex()
            var entries: [(TopicFilter, Int, UInt32)] = []
            for id in 0..<60 {
                let filter = try! TopicFilter(randomFilter())
                let peer = Int.random(in: 0..<peers.count)
                index.insert(filter, peer: peers[peer], subscriptionID: UInt32(id))
                entries.append((filter, peer, UInt32(id)))
            }
            // Remove a third, so pruning is exercised too.
            for _ in 0..<20 {
                let (filter, peer, id) = entries.remove(at: Int.random(in: 0..<entries.count))
                index.remove(filter, peer: peers[peer], subscriptionID: id)
            }
            #expect(index.count == entries.count)
            for _ in 0..<200 {
                var topic = randomTopic()
                var found: [UInt32] = []
                topic.withUTF8 { index.forEachMatch(UnsafeRawBufferPointer($0)) { found.append($0.subscriptionID) } }
                let expected = entries.filter { $0.0.matches(topic) }.map(\.2)
                #expect(found.sorted() == expected.sorted(), "topic \(topic)")
            }
        }
    }

    @Test func generationChangesOnEveryChange() {
        let index = SubscriptionIndex()
        let peer = PeerPointer.allocate(capacity: 1)
        peer.initialize(to: Peer.detached(slot: 0, id: 1))
        defer { peer.deinitialize(count: 1); peer.deallocate() }
        let start = index.generation
        let filter = try! TopicFilter("a/+")
        index.insert(filter, peer: peer, subscriptionID: 1)
        let afterInsert = index.generation
        #expect(afterInsert != start)
        index.remove(filter, peer: peer, subscriptionID: 1)
        #expect(index.generation != afterInsert)
        index.remove(filter, peer: peer, subscriptionID: 1)  // not there: no change
        #expect(index.count == 0)
    }
}

extension Peer {
    /// The queued-output record every detached peer shares (never read by the index).
    nonisolated(unsafe) static let detachedQueuedOutput: QueuedOutputPointer = {
        let record = QueuedOutputPointer.allocate(capacity: 1)
        record.initialize(to: QueuedOutput())
        return record
    }()

    /// A peer outside any broker, for exercising the index alone.
    static func detached(slot: PeerSlot, id: UInt64) -> Peer {
        let identity = PeerIdentity(uid: 1, gid: 1)
        return Peer(slot: slot, id: id, credentials: PeerCredentials(pid: 1, uid: 1, gid: 1), identity: identity,
            access: PeerAccess(policy: .open, identity: identity), queuedOutput: detachedQueuedOutput, outputLimit: 1,
            handshakeDeadline: 0)
    }
}
