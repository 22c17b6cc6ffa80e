import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Requests that wait for the broker's answer: SUBSCRIBE, UNSUBSCRIBE and PING, by request
/// id or token.
extension Connection {
    /// The error a new request fails with in `phase`, or nil if requests are accepted.
    static func refusal(in phase: Phase) -> HeraldError? {
        switch phase {
        case .open, .reconnecting: nil
        case .connecting, .closing: .closed
        case .ended(let reason): reason ?? .closed
        }
    }

    /// Reserves `count` fresh broker-side subscription ids.
    func allocateSubscriptionIDs(_ count: Int) -> [UInt32] {
        control.withLock { state in
            (0..<count).map { _ in
                let id = state.nextSubscriptionID
                state.nextSubscriptionID = id == UInt32.max ? 1 : id + 1
                return id
            }
        }
    }

    /// Registers `subscription` for delivery and sends one SUBSCRIBE per filter;
    /// `completion` runs once all are acknowledged or the first fails.
    func subscribe(_ subscription: SubscriptionState, responder: Bool = false, completion: @escaping Completion) {
        let group = RequestGroup(count: subscription.filters.count, completion: completion)
        let requestCompletion: Completion = { @Sendable result in group.complete(result) }
        let outcome = control.withLock { state -> Result<[UInt8], HeraldError> in
            if let refusal = Connection.refusal(in: state.phase) { return .failure(refusal) }
            var frames: [UInt8] = []
            for (id, filter) in zip(subscription.ids, subscription.filters) {
                let requestID = state.takeRequestID()
                state.pendingRequests[requestID] = PendingRequest(
                    filter: filter.text, subscriptionID: id, completion: requestCompletion)
                state.subscriptions[id] = BrokerSubscription(filter: filter, state: subscription, responder: responder)
                // While reconnecting, the SUBSCRIBE goes out with the others once connected.
                guard case .open = state.phase else { continue }
                FrameEncoder.encode(
                    .subscribe(Subscribe(requestID: requestID, subscriptionID: id, filter: filter.text, responder: responder)), into: &frames)
            }
            subscriptionsVersion.add(1, ordering: .releasing)
            return .success(frames)
        }
        switch outcome {
        case .success(let frames):
            // A rejection here means close() raced us: the I/O thread fails the pending requests when it ends.
            if !frames.isEmpty { enqueue(frames) }
        case .failure(let refusal):
            completion(.failure(refusal))
        }
    }

    /// Stops delivery to `subscription` at once and sends UNSUBSCRIBE for its filters the
    /// broker still holds; `completion` (if any) runs once the broker acknowledged them.
    func unsubscribe(_ subscription: SubscriptionState, completion: Completion?) {
        let group = completion.map { RequestGroup(count: subscription.ids.count, completion: $0) }
        let requestCompletion: Completion? = group.map { group in { @Sendable result in group.complete(result) } }
        let (frames, requestCount) = control.withLock { state -> ([UInt8], Int) in
            var frames: [UInt8] = []
            var requestCount = 0
            var removed = false
            for id in subscription.ids where state.subscriptions.removeValue(forKey: id) != nil {
                removed = true
                guard case .open = state.phase else { continue }
                let requestID = state.takeRequestID()
                state.pendingRequests[requestID] = PendingRequest(filter: nil, subscriptionID: nil, completion: requestCompletion)
                FrameEncoder.encode(.unsubscribe(Unsubscribe(requestID: requestID, subscriptionID: id)), into: &frames)
                requestCount += 1
            }
            if removed { subscriptionsVersion.add(1, ordering: .releasing) }
            return (frames, requestCount)
        }
        if requestCount > 0 { enqueue(frames) }
        group?.skip(subscription.ids.count - requestCount)
    }

    /// Sends a PING; `completion` runs when its PONG arrives, with any publish error reported before it.
    func ping(completion: @escaping Completion) {
        let outcome = control.withLock { state -> Result<UInt64, HeraldError> in
            if let refusal = Connection.refusal(in: state.phase) { return .failure(refusal) }
            let token = state.nextPingToken
            state.nextPingToken &+= 1
            state.pendingPings[token] = completion
            return .success(token)
        }
        switch outcome {
        case .success(let token): enqueue(FrameEncoder.encode(.ping(token: token)))
        case .failure(let error): completion(.failure(error))
        }
    }
}
