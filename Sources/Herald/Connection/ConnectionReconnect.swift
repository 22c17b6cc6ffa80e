import HeraldProtocol
import Synchronization

/// Reconnecting, the connection's side: the I/O thread lost the broker (``beginReconnecting(_:publishing:)``)
/// and later has a new session (``resumeAfterReconnect(carried:into:)``). What a reconnect
/// re-sends comes from one place, `Control.subscriptions`, pending requests and flushes.
extension Connection {
    /// The broker went away: requests stay pending, publishing follows `publishing`, and
    /// the event stream hears why.
    func beginReconnecting(_ reason: HeraldError, publishing: ReconnectPolicy.Publishing) {
        let calls = control.withLock { state -> [CallCompletion] in
            if case .open = state.phase { state.phase = .reconnecting }
            defer {
                state.pendingCalls = [:]
                earliestCallDeadline.store(.max, ordering: .releasing)
            }
            return state.pendingCalls.values.map(\.completion)
        }
        // A request's answer would come back through the session that was lost: it fails
        // now (the responder may or may not have acted on it, so it is not sent again).
        for call in calls { call(.failure(.connectionLost("the broker connection was lost before the reply came (\(reason))"))) }
        let waiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.reconnecting = publishing
            // Publishers waiting for space go on under the reconnect policy.
            defer { state.spaceWaiters = [] }
            return state.spaceWaiters
        }
        for waiter in waiters { waiter.resume() }
        emit(.reconnecting(reason))
    }

    /// A new session is up. Fills `writing` (empty) with what goes out first, in order: a
    /// SUBSCRIBE for every subscription (a pending one keeps its request id, so its caller's
    /// completion runs), the PUBLISH frames of `carried` (the frames not written in full
    /// before the loss) and of the outgoing buffer, in the order they were published, and a
    /// PING for every flush still waiting; a GOODBYE queued by close() stays last. Frames
    /// already written in full are not sent again (a message is delivered at most once).
    /// Pending UNSUBSCRIBEs succeed: the new session never had those subscriptions.
    /// `resubscribed` runs once the broker has answered every SUBSCRIBE sent here.
    func resumeAfterReconnect(carried: [UInt8], into writing: inout OutgoingBuffer, resubscribed: @escaping Completion) {
        // 1. What tasks queued meanwhile: only publishes (and a GOODBYE) are kept; requests
        //    and flushes are rebuilt below from the pending tables.
        var publishes: [UInt8] = []
        var goodbye: [UInt8] = []
        var leftOut = out.withLock { state in
            defer { state.buffer.removeAll() }
            return Connection.keepPublishes(UnsafeRawBufferPointer(start: state.buffer.bytes, count: state.buffer.count),
                into: &publishes, goodbye: &goodbye)
        }
        // 2. Atomically with going back to `.open`: a subscribe from now on sends its own SUBSCRIBE.
        var requests: [UInt8] = []
        var pings: [UInt8] = []
        // One more than the SUBSCRIBEs, completed below outside the lock: with no subscription
        // `resubscribed` must not run (and take the lock again) inside it.
        var group: RequestGroup?
        let settled = control.withLock { state -> [Completion] in
            if case .reconnecting = state.phase { state.phase = .open }
            let requestGroup = RequestGroup(count: state.subscriptions.count + 1, completion: resubscribed)
            group = requestGroup
            var pendingByID: [UInt32: UInt32] = [:]
            var unsubscribes: [Completion] = []
            for (requestID, request) in state.pendingRequests {
                if let id = request.subscriptionID {
                    pendingByID[id] = requestID
                } else {
                    state.pendingRequests[requestID] = nil
                    if let completion = request.completion { unsubscribes.append(completion) }
                }
            }
            // A subscribe whose subscription was cancelled meanwhile has nothing left to set up.
            for (id, requestID) in pendingByID where state.subscriptions[id] == nil {
                if let completion = state.pendingRequests.removeValue(forKey: requestID)?.completion { unsubscribes.append(completion) }
            }
            for (id, subscription) in state.subscriptions.sorted(by: { $0.key < $1.key }) {
                let requestID: UInt32
                if let pending = pendingByID[id] {
                    requestID = pending
                    // Its caller's completion still runs; the group hears of it too.
                    let original = state.pendingRequests[pending]?.completion
                    state.pendingRequests[pending]?.completion = { @Sendable result in
                        original?(result)
                        requestGroup.complete(.success(()))
                    }
                } else {
                    requestID = state.takeRequestID()
                    // A refusal ends that subscription (see completeRequest); the others go on.
                    state.pendingRequests[requestID] = PendingRequest(
                        filter: subscription.filter.text, subscriptionID: id,
                        completion: { @Sendable _ in requestGroup.complete(.success(())) }, resent: true)
                }
                FrameEncoder.encode(
                    .subscribe(
                        Subscribe(requestID: requestID, subscriptionID: id, filter: subscription.filter.text, responder: subscription.responder)),
                    into: &requests)
            }
            // The last will first of all, for the new session (a pending one from the old
            // session has no answer coming: it settles as done).
            if var will = willFrame(registeringIn: &state) {
                will.append(contentsOf: requests)
                requests = will
            }
            for token in state.pendingPings.keys.sorted() { FrameEncoder.encode(.ping(token: token), into: &pings) }
            return unsubscribes
        }
        for completion in settled { completion(.success(())) }
        group?.complete(.success(()))
        var carriedPublishes: [UInt8] = []
        var carriedGoodbye: [UInt8] = []
        leftOut += carried.withUnsafeBytes { Connection.keepPublishes($0, into: &carriedPublishes, goodbye: &carriedGoodbye) }
        if leftOut > 0 {
            recordPublishError(.connectionLost(
                "\(leftOut) message(s) passing file descriptors were not sent: the connection was lost before they were written"))
        }
        writing.append(requests)
        writing.append(carriedPublishes)
        writing.append(publishes)
        if goodbye.isEmpty && carriedGoodbye.isEmpty {
            writing.append(pings)
        } else {
            writing.append(goodbye.isEmpty ? carriedGoodbye : goodbye)
        }
        // 3. Publishing is back to normal.
        let waiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.reconnecting = nil
            defer { state.spaceWaiters = [] }
            return state.spaceWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Appends the PUBLISH frames of `frames` (whole frames, back to back) to `publishes`, and
    /// a GOODBYE to `goodbye`; drops the rest (requests, PINGs, PONGs of the old session).
    /// A PUBLISH that passes descriptors is not kept (its descriptors went with the old
    /// socket, or are closed with the buffer): returns how many were left out.
    @discardableResult
    static func keepPublishes(_ frames: UnsafeRawBufferPointer, into publishes: inout [UInt8], goodbye: inout [UInt8]) -> Int {
        var leftOut = 0
        var offset = 0
        while frames.count - offset >= FrameHeader.size {
            let header = FrameHeader(loadingFrom: frames.baseAddress! + offset)
            let length = header.frameLength
            guard frames.count - offset >= length else { break }
            let frame = UnsafeRawBufferPointer(rebasing: frames[offset..<offset + length])
            if header.type == FrameType.publish.rawValue {
                if header.flags & FrameFlags.descriptors != 0 {
                    leftOut += 1
                } else {
                    publishes.append(contentsOf: frame)
                }
            } else if header.type == FrameType.goodbye.rawValue {
                goodbye = Array(frame)
            }
            offset += length
        }
        return leftOut
    }
}
