import HeraldCore
import HeraldProtocol

/// The broker's session state machine fed arbitrary byte streams from several peers at once,
/// through ``InMemoryBroker`` (exactly the code the epoll server runs, minus the system calls).
///
/// The input is a script: each step's first byte picks a peer (low 2 bits) and an action
/// (next 3 bits): feed the next bytes (length from the following byte) to that peer, drain
/// what was queued for it, end the batch, disconnect it (a new peer takes its place), or
/// let time pass (deadlines) or, for the largest step of time, reload the other of two
/// policies. Two of the four peers start with a completed handshake and subscriptions, so
/// routing, slow consumers, request/reply and closing all get exercised; peers alternate between two uids
/// so that the policy's rules for users, denials and revocations are too. Invariants: no
/// crash, and everything the broker queues is whole, decodable frames.
func fuzzBrokerSession(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data, size > 0 else { return 0 }
    var configuration = BrokerConfiguration()
    configuration.outputLimit = 4096
    configuration.maxFrameSize = 4096
    configuration.partialInputBudget = 16 << 10
    configuration.maxLingeringConnections = 2
    // Small enough that the per-uid quota on queued output is reached.
    configuration.maxQueuedBytesPerUID = 8192
    // Small enough that fuzzed retained publishes reach the per-uid quotas.
    configuration.maxRetainedMessagesPerUID = 4
    configuration.maxRetainedBytesPerUID = 512
    configuration.policy = fuzzPolicies[0]
    let broker = InMemoryBroker(configuration: configuration)
    var connections = 0
    func connect() -> InMemoryBroker.PeerHandle {
        connections += 1
        return broker.connect(uid: connections % 2 == 0 ? 1000 : 2000, groups: connections % 3 == 0 ? [300] : [])
    }
    var peers = (0..<4).map { _ in connect() }
    var policyInForce = 0
    for index in 0..<2 {
        broker.feed(peers[index], FrameEncoder.encode(.hello(Hello(slowConsumerPolicy: index == 0 ? .drop : .backpressure,
            outputLimit: 4096, capabilities: index == 0
                ? Capabilities.retained | Capabilities.direct | Capabilities.directInbox | Capabilities.monitor | Capabilities.lastWill
                : Capabilities.direct | Capabilities.lastWill, clientName: "fuzz-\(index)"))))
        broker.feed(peers[index], FrameEncoder.encode(.subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "#"))))
        // And answers requests on every topic, so fuzzed REQUESTs reach a responder and
        // fuzzed REPLYs may name a waiting call.
        broker.feed(peers[index], FrameEncoder.encode(.subscribe(Subscribe(requestID: 2, subscriptionID: 2, filter: "#", responder: true))))
        // And monitors everything (a monitor sees requests, replies and direct messages too;
        // allowed when this peer runs as the broker's uid, refused otherwise).
        broker.feed(peers[index], FrameEncoder.encode(.subscribe(Subscribe(requestID: 3, subscriptionID: 3, filter: "#", monitor: true))))
        _ = broker.drainFrames(peers[index])
    }
    let input = UnsafeBufferPointer(start: data, count: size)
    var position = 0
    var now = 0.0
    while position < input.count {
        let step = input[position]
        position += 1
        let peer = Int(step & 0x03)
        switch (step >> 2) & 0x07 {
        case 0, 1, 2, 3:
            // Feed up to 255 bytes (more often than anything else).
            guard position < input.count else { break }
            let length = min(Int(input[position]), input.count - position - 1)
            position += 1
            broker.feed(peers[peer], UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: input[position..<position + length])))
            position += length
        case 4:
            checkWholeFrames(broker.drainFrames(peers[peer]), broker, peers[peer])
            guard broker.queuedOutputIsConsistent() else { fatalError("per-uid queued output drifted from the queues") }
            guard broker.core.retained.isConsistent() else { fatalError("per-uid retained usage drifted from the store") }
            guard broker.core.requestTableIsConsistent else { fatalError("the waiting requests' indexes disagree") }
        case 5:
            broker.endBatch()
        case 6:
            broker.disconnect(peers[peer])
            broker.endBatch()
            peers[peer] = connect()
        default:
            if step >> 5 == 7 {
                policyInForce = 1 - policyInForce
                configuration.policy = fuzzPolicies[policyInForce]
                _ = broker.core.reload(configuration, now: now)
            } else {
                now += Double(step >> 5) * 4
                broker.advanceClock(to: now)
            }
        }
    }
    for peer in peers { checkWholeFrames(broker.drainFrames(peer), broker, peer) }
    broker.endBatch()
    return 0
}

/// After a drain nothing may be left in the queue: everything queued was whole frames.
private func checkWholeFrames(_ frames: [Frame], _ broker: InMemoryBroker, _ peer: InMemoryBroker.PeerHandle) {
    if broker.queuedBytes(peer) != 0 {
        fatalError("bytes that are not a whole frame were queued for a peer after \(frames.count) frames")
    }
}

/// Two policies the session target switches between: uid 1000 is the broker's; uid 2000 is
/// admitted by the first only; group 300 gets more.
let fuzzPolicies: [Policy] = {
    func rule(_ filter: String, users: Set<UInt32> = [], groups: Set<UInt32> = [], publish: PolicyVerdict? = nil,
        subscribe: PolicyVerdict? = nil) -> PolicyRule {
        PolicyRule(filter: try! TopicFilter(filter), subjects: PolicySubjects(users: users, groups: groups),
            publish: publish, subscribe: subscribe, location: PolicyLocation(file: "fuzz.toml", line: 1))
    }
    let first = Policy(
        admittedUsers: [2000],
        rules: [
            rule("a/#", publish: .deny), rule("b/+", subscribe: .deny), rule("c/#", groups: [300], subscribe: .allow),
            rule("c/#", subscribe: .deny), rule("+/x", users: [2000], publish: .deny, subscribe: .deny),
        ])
    let second = Policy(
        admittedGroups: [300],
        rules: [rule("#", users: [1000], subscribe: .deny), rule("d", publish: .allow), rule("d/#", publish: .deny)],
        defaultPublish: .deny)
    return [first, second]
}()
