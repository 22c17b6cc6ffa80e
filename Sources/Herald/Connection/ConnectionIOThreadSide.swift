import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What the I/O thread calls: it takes the outgoing frames, reads the subscription table,
/// completes requests and ends the connection.
extension Connection {
    /// Marks the handshake done: requests are accepted from now on.
    func didOpen() {
        control.withLock { $0.phase = .open }
    }

    /// Swaps the outgoing buffer into `writing` (which must be empty). Returns false, and
    /// marks the I/O thread idle, if there is nothing to write.
    func takeOutgoing(into writing: inout OutgoingBuffer) -> Bool {
        let (taken, waiters) = out.withLock { state -> (Bool, [CheckedContinuation<Void, Never>]) in
            if state.buffer.isEmpty {
                state.ioIdle = true
                return (false, [])
            }
            swap(&state.buffer, &writing)
            state.ioIdle = false
            let waiters = state.spaceWaiters
            if !waiters.isEmpty { state.spaceWaiters = [] }
            return (true, waiters)
        }
        for waiter in waiters { waiter.resume() }
        return taken
    }

    /// The subscriptions messages are currently dispatched to, each with its confirmed filters.
    func activeSubscriptions() -> [(state: SubscriptionState, filters: [TopicFilter])] {
        control.withLock { state in
            var index: [ObjectIdentifier: Int] = [:]
            var result: [(state: SubscriptionState, filters: [TopicFilter])] = []
            for entry in state.subscriptions.values where entry.acknowledged {
                let key = ObjectIdentifier(entry.state)
                // A responder subscription gets CALL frames by subscription id, never a
                // MESSAGE by topic: it is a target with no filter to match.
                let filters = entry.responder ? [] : [entry.filter]
                if let position = index[key] {
                    result[position].filters.append(contentsOf: filters)
                } else {
                    index[key] = result.count
                    result.append((entry.state, filters))
                }
            }
            // Direct messages are matched by nothing: the inbox is a target with no filter.
            if let directInbox { result.append((directInbox, [])) }
            return result
        }
    }

    /// Whether a reply (OK, ERROR, PONG) is awaited. While one is, the I/O thread keeps
    /// reading even if a subscription is over its buffer limit: what precedes the reply is
    /// bounded by the broker's output limit, and a consumer may be waiting for the reply
    /// before it drains its subscription.
    var awaitsReply: Bool {
        control.withLock { !$0.pendingRequests.isEmpty || !$0.pendingPings.isEmpty || !$0.pendingCalls.isEmpty }
    }

    /// What answering a request changed.
    enum RequestAnswer {
        /// No request has that id.
        case unknown
        case answered
        /// A SUBSCRIBE succeeded: the dispatch table changed.
        case subscribed
    }

    /// Completes the request the broker answered.
    func completeRequest(_ requestID: UInt32, error: ErrorFrame?) -> RequestAnswer {
        let (request, subscribed) = control.withLock { state -> (PendingRequest?, Bool) in
            guard let request = state.pendingRequests.removeValue(forKey: requestID) else { return (nil, false) }
            guard error == nil, let id = request.subscriptionID, state.subscriptions[id] != nil else { return (request, false) }
            state.subscriptions[id]!.acknowledged = true
            subscriptionsVersion.add(1, ordering: .releasing)
            return (request, true)
        }
        guard let request else { return .unknown }
        if let error {
            let failure = HeraldError.fromBroker(error, filter: request.filter)
            if request.resent, let id = request.subscriptionID {
                // A subscription re-sent after a reconnect was refused by the new broker: it ends.
                let ended = control.withLock { $0.subscriptions.removeValue(forKey: id) }
                if let ended {
                    subscriptionsVersion.add(1, ordering: .releasing)
                    _ = ended.state.end(.failed(failure))
                }
            }
            request.completion?(.failure(failure))
        } else {
            request.completion?(.success(()))
        }
        return subscribed ? .subscribed : .answered
    }

    /// The broker removed subscription `id` (its policy changed): the subscription it
    /// belongs to ends with ``HeraldError/subscriptionRevoked(filter:message:)``, and its
    /// other filters, if any, are unsubscribed, so no part of it goes on half-working.
    func revokeSubscription(_ id: UInt32, _ error: ErrorFrame) {
        let revoked = control.withLock { state -> BrokerSubscription? in
            guard let revoked = state.subscriptions.removeValue(forKey: id) else { return nil }
            subscriptionsVersion.add(1, ordering: .releasing)
            return revoked
        }
        guard let revoked else { return }
        unsubscribe(revoked.state, completion: nil)
        _ = revoked.state.end(.failed(HeraldError.fromBroker(error, filter: revoked.filter.text)))
    }

    /// Completes the flush waiting for `token`, failing it with a publish error reported since the last flush.
    func completePing(_ token: UInt64) {
        let (completion, publishError) = control.withLock { state -> (Completion?, HeraldError?) in
            guard let completion = state.pendingPings.removeValue(forKey: token) else { return (nil, nil) }
            let error = state.publishError
            state.publishError = nil
            return (completion, error)
        }
        guard let completion else { return }
        completion(publishError.map { .failure($0) } ?? .success(()))
    }

    /// Records a refused PUBLISH for the next flush and reports it as an event.
    func recordPublishError(_ error: HeraldError) {
        control.withLock { $0.publishError = error }
        emit(.publishFailed(error))
    }

    /// Sends `event` to every event stream.
    func emit(_ event: BusEvent) {
        let sinks = control.withLock { Array($0.eventSinks.values) }
        for sink in sinks { sink.yield(event) }
    }

    /// Ends the connection: rejects new work, fails everything pending, ends every
    /// subscription (with an error if `failSubscriptions`) and reports `.disconnected`.
    /// `reason` is nil for a close this side asked for.
    func finish(reason: HeraldError?, failSubscriptions: Bool) {
        let failure = reason ?? .closed
        let spaceWaiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.rejection == nil { state.rejection = failure }
            state.buffer.removeAll()
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return waiters
        }
        for waiter in spaceWaiters { waiter.resume() }
        let (requests, pings, subscriptions, sinks, calls) = control.withLock { state in
            state.phase = .ended(reason)
            defer {
                state.pendingRequests = [:]
                state.pendingPings = [:]
                state.subscriptions = [:]
                state.eventSinks = [:]
                state.pendingCalls = [:]
                earliestCallDeadline.store(.max, ordering: .releasing)
            }
            return (
                Array(state.pendingRequests.values), Array(state.pendingPings.values),
                state.subscriptions.values.map(\.state), Array(state.eventSinks.values), state.pendingCalls.values.map(\.completion)
            )
        }
        subscriptionsVersion.add(1, ordering: .releasing)
        for request in requests { request.completion?(.failure(failure)) }
        for call in calls { call(.failure(failure)) }
        for ping in pings { ping(.failure(failure)) }
        let end: SubscriptionState.End = failSubscriptions && reason != nil ? .failed(failure) : .finished
        for subscription in subscriptions { subscription.end(end) }
        directInbox?.end(end)
        for sink in sinks {
            sink.yield(.disconnected(reason))
            sink.finish()
        }
    }

    /// The I/O thread has exited: wakes everyone waiting in close().
    func threadDidExit() {
        let waiters = control.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.threadExited = true
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
