import HeraldProtocol

/// What the broker tells about itself (PROTOCOL.md §6.6): it answers REQUESTs on
/// `$SYS/broker/peers` (every connected peer) and `$SYS/broker/stats` (its counters and the
/// per-uid usage) itself, with a RESPONSE whose payload is JSON and whose sender is the
/// broker. `herald peers` and `herald stats` are these requests.
extension BrokerCore {
    /// The prefix of the topics the broker answers requests on.
    static let brokerServedPrefix = Array("$SYS/broker/".utf8)

    /// Whether a REQUEST on `topic` is for the broker itself.
    static func isBrokerServed(_ topic: UnsafeRawBufferPointer) -> Bool {
        topic.count >= brokerServedPrefix.count && topic.prefix(brokerServedPrefix.count).elementsEqual(brokerServedPrefix)
    }

    /// Answers a request on a `$SYS/broker/…` topic: `peers` and `stats` with a RESPONSE,
    /// anything else with `no_responders`. The policy applies as to any request (asking is
    /// publishing on the topic), so a policy file can keep these from some users.
    func answerBrokerRequest(_ peer: PeerPointer, requestID: UInt32, topic: UnsafeRawBufferPointer) {
        let name = String(decoding: topic.dropFirst(Self.brokerServedPrefix.count), as: UTF8.self)
        if let rule = peer.pointee.access.publishDenial(topic) {
            deny(peer, requestID: requestID, action: "asking the broker for", target: "$SYS/broker/\(name)", rule: rule)
            return
        }
        let json: String
        switch name {
        case "peers": json = peersJSON()
        case "stats": json = statisticsJSON()
        default:
            requestError(peer, .noResponders, requestID: requestID,
                "the broker answers requests on $SYS/broker/peers and $SYS/broker/stats only, not '$SYS/broker/\(name.prefix(64))'")
            return
        }
        statistics.introspectionRequests &+= 1
        let response = Response(
            senderID: 0, sender: PeerCredentials(pid: brokerPID, uid: brokerUID, gid: brokerGID), requestID: requestID,
            payload: Array(json.utf8))
        enqueue(.response(response), to: peer, control: false)
    }

    /// Every connected peer (closing ones included), by id: who it is, what it holds, how it
    /// is doing.
    func peersJSON() -> String {
        let now = wallClock()
        var entries: [String] = []
        for peer in peers.snapshot().sorted(by: { $0.pointee.id < $1.pointee.id }) where peer.pointee.state != .closed {
            let state: String =
                switch peer.pointee.state {
                case .handshaking: "handshaking"
                case .active: peer.pointee.drainingForShutdown ? "draining" : "active"
                case .closing: "closing"
                case .closed: "closed"
                }
            let filters = peer.pointee.subscriptions.sorted { $0.key < $1.key }.map { id, filter in
                "{\"id\":\(id),\"filter\":\(JSONText.quoted(filter.text))\(peer.pointee.responderIDs.contains(id) ? ",\"responder\":true" : "")}"
            }
            let process = processName(peer.pointee.credentials.pid) ?? ""
            let seconds = peer.pointee.connectedAt > 0 && now > peer.pointee.connectedAt ? (now - peer.pointee.connectedAt) / 1_000_000_000 : 0
            var entry = "{\"peer\":\(peer.pointee.id),\"name\":\(JSONText.quoted(peer.pointee.name)),\"state\":\"\(state)\","
            entry += "\"pid\":\(peer.pointee.credentials.pid),\"uid\":\(peer.pointee.credentials.uid),\"gid\":\(peer.pointee.credentials.gid),"
            entry += "\"process\":\(JSONText.quoted(process)),\"process_exited\":\(peer.pointee.processGone),"
            entry += "\"connected_seconds\":\(seconds),\"policy\":\"\(peer.pointee.policy)\",\"output_limit\":\(peer.pointee.outputLimit),"
            entry += "\"queued_bytes\":\(peer.pointee.output.count),\"published\":\(peer.pointee.messagesPublished),"
            entry += "\"received\":\(peer.pointee.messagesReceived),\"dropped\":\(peer.pointee.totalDropped),"
            entry += "\"subscriptions\":[\(filters.joined(separator: ","))]}"
            entries.append(entry)
        }
        return "[" + entries.joined(separator: ",") + "]"
    }

    /// The broker's counters (every field of ``BrokerStatistics``) and, per uid, its
    /// connections, subscriptions, queued output and retained messages against the quotas.
    func statisticsJSON() -> String {
        let counters = Mirror(reflecting: statistics).children.compactMap { child -> String? in
            guard let label = child.label else { return nil }
            return "\(JSONText.quoted(JSONText.snakeCase(label))):\(child.value)"
        }
        let uids = Set(usageByUID.keys).union(queuedOutputByUID.keys).union(retained.uids)
        let perUID = uids.sorted().map { uid in
            let usage = usageByUID[uid] ?? UserUsage()
            let queued = queuedOutputByUID[uid]?.pointee.bytes ?? 0
            let kept = retained.usage(of: uid)
            return "{\"uid\":\(uid),\"connections\":\(usage.connections),\"subscriptions\":\(usage.subscriptions),"
                + "\"queued_bytes\":\(queued),\"retained_messages\":\(kept.messages),\"retained_bytes\":\(kept.bytes)}"
        }
        let limits = "{\"max_connections_per_uid\":\(configuration.maxConnectionsPerUID),"
            + "\"max_subscriptions_per_uid\":\(configuration.maxSubscriptionsPerUID),"
            + "\"max_queued_bytes_per_uid\":\(configuration.maxQueuedBytesPerUID),"
            + "\"max_retained_per_uid\":\(configuration.maxRetainedMessagesPerUID),"
            + "\"max_retained_bytes_per_uid\":\(configuration.maxRetainedBytesPerUID)}"
        return "{\"broker\":{\"pid\":\(brokerPID),\"uid\":\(brokerUID),\"name\":\(JSONText.quoted(configuration.serverName))},"
            + "\"counters\":{\(counters.joined(separator: ","))},\"retained\":{\"messages\":\(retained.count),\"bytes\":\(retained.totalBytes)},"
            + "\"waiting_requests\":\(requests.count),\"limits\":\(limits),\"uids\":[\(perUID.joined(separator: ","))]}"
    }
}

extension JSONText {
    /// `camelCase` as `snake_case` (the counters' names in JSON).
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for character in name {
            if character.isUppercase {
                out += "_" + character.lowercased()
            } else {
                out.append(character)
            }
        }
        return out
    }
}
