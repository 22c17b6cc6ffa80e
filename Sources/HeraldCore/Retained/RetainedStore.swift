import HeraldProtocol

/// A topic's retained message: the last retained PUBLISH on it, as the broker stored it.
public struct RetainedMessage: Equatable, Sendable {
    /// Topic bytes (a valid, publishable topic).
    public var topic: [UInt8]
    /// The payload; never empty (an empty retained PUBLISH clears the topic instead).
    public var payload: [UInt8]
    /// The publishing connection's peer id and kernel-verified identity, as its MESSAGE
    /// carried them.
    public var senderID: UInt64
    public var sender: PeerCredentials
    /// When the broker stored it: nanoseconds since the Unix epoch.
    public var retainedAt: UInt64

    /// What the message costs its publisher's uid against the retained-bytes quota.
    public var charge: Int { topic.count + payload.count }

    /// Creates a retained message.
    public init(topic: [UInt8], payload: [UInt8], senderID: UInt64, sender: PeerCredentials, retainedAt: UInt64) {
        self.topic = topic
        self.payload = payload
        self.senderID = senderID
        self.sender = sender
        self.retainedAt = retainedAt
    }
}

/// The broker's retained messages, one per topic, with what each uid holds of them.
///
/// Pure data, no I/O: the broker (``BrokerCore``) decides when to store and whom to hand
/// messages to; this keeps the per-uid quotas exact. A message is charged to the uid that
/// published it; replacing or clearing it gives the charge back to that uid, whoever
/// replaces it. Over a quota, nothing changes: the store never evicts to make room.
public struct RetainedStore: Sendable {
    /// What one uid's retained messages take.
    public struct Usage: Equatable, Sendable {
        public var messages = 0
        public var bytes = 0
    }

    /// The per-uid quotas.
    public struct Limits: Equatable, Sendable {
        public var messagesPerUID: Int
        public var bytesPerUID: Int

        public init(messagesPerUID: Int, bytesPerUID: Int) {
            self.messagesPerUID = messagesPerUID
            self.bytesPerUID = bytesPerUID
        }
    }

    /// What ``retain(_:limits:)`` did.
    public enum Outcome: Equatable, Sendable {
        /// The topic now holds this message (in place of what it held, if anything).
        case stored
        /// The topic's retained message was removed (an empty payload).
        case cleared
        /// An empty payload on a topic with nothing retained: nothing to do.
        case nothingToClear
        /// Storing it would take its uid past the quota on messages.
        case tooManyMessages(held: Int, limit: Int)
        /// Storing it would take its uid past the quota on bytes.
        case tooManyBytes(held: Int, adding: Int, limit: Int)
    }

    private var messages: [[UInt8]: RetainedMessage] = [:]
    private var usageByUID: [UInt32: Usage] = [:]
    /// Bytes of every retained message together.
    public private(set) var totalBytes = 0

    /// An empty store.
    public init() {}

    /// Retained messages held.
    public var count: Int { messages.count }

    /// What `uid`'s retained messages take.
    public func usage(of uid: UInt32) -> Usage { usageByUID[uid, default: Usage()] }

    /// Every uid that holds retained messages.
    public var uids: [UInt32] { Array(usageByUID.keys) }

    /// The retained message on `topic`, if any.
    public func message(on topic: [UInt8]) -> RetainedMessage? { messages[topic] }

    /// Stores `message` as its topic's retained message, or clears the topic when the
    /// payload is empty, within `limits` for the publisher's uid.
    public mutating func retain(_ message: RetainedMessage, limits: Limits) -> Outcome {
        let previous = messages[message.topic]
        if message.payload.isEmpty {
            guard let previous else { return .nothingToClear }
            messages[message.topic] = nil
            uncharge(previous)
            return .cleared
        }
        let uid = message.sender.uid
        var held = usage(of: uid)
        // What the uid would hold with this message in place of the one it replaces.
        if let previous, previous.sender.uid == uid {
            held.messages -= 1
            held.bytes -= previous.charge
        }
        guard held.messages + 1 <= limits.messagesPerUID else {
            return .tooManyMessages(held: held.messages, limit: limits.messagesPerUID)
        }
        guard held.bytes + message.charge <= limits.bytesPerUID else {
            return .tooManyBytes(held: held.bytes, adding: message.charge, limit: limits.bytesPerUID)
        }
        if let previous { uncharge(previous) }
        messages[message.topic] = message
        charge(message)
        return .stored
    }

    /// Puts back messages kept across a restart, without the quotas (they were within them
    /// when stored; a lowered quota only stops the uid from adding more). A topic already
    /// held is replaced.
    public mutating func restore(_ message: RetainedMessage) {
        if let previous = messages[message.topic] { uncharge(previous) }
        messages[message.topic] = message
        charge(message)
    }

    /// The retained messages `filter` matches, in topic order (byte-wise), for a new subscription.
    public func matching(_ filter: TopicFilter) -> [RetainedMessage] {
        var found: [RetainedMessage] = []
        for (topic, message) in messages {
            let matches = topic.withUnsafeBytes { filter.matches(topic: $0) }
            if matches { found.append(message) }
        }
        return found.sorted { $0.topic.lexicographicallyPrecedes($1.topic) }
    }

    /// Every retained message, in topic order.
    public var all: [RetainedMessage] { messages.values.sorted { $0.topic.lexicographicallyPrecedes($1.topic) } }

    /// Whether the per-uid sums equal what the messages add up to (for tests and fuzzing).
    public func isConsistent() -> Bool {
        var sums: [UInt32: Usage] = [:]
        var total = 0
        for message in messages.values {
            sums[message.sender.uid, default: Usage()].messages += 1
            sums[message.sender.uid, default: Usage()].bytes += message.charge
            total += message.charge
        }
        return sums == usageByUID && total == totalBytes
    }

    private mutating func charge(_ message: RetainedMessage) {
        usageByUID[message.sender.uid, default: Usage()].messages += 1
        usageByUID[message.sender.uid, default: Usage()].bytes += message.charge
        totalBytes += message.charge
    }

    private mutating func uncharge(_ message: RetainedMessage) {
        let uid = message.sender.uid
        var usage = usageByUID[uid, default: Usage()]
        usage.messages -= 1
        usage.bytes -= message.charge
        usageByUID[uid] = usage.messages == 0 ? nil : usage
        totalBytes -= message.charge
    }
}
