import HeraldProtocol

/// Request/reply on the connection: REQUESTs waiting for their RESPONSE by request id (the
/// same id space as SUBSCRIBE's, so an ERROR's `request_id` names one of them only), and
/// REPLYs to the CALLs a responder subscription received.
extension Connection {
    /// Sends a REQUEST on `topic` (already validated); `completion` runs once, with the
    /// RESPONSE, or the reason there is none (``HeraldError/timeout`` once `timeout` has
    /// passed: the I/O thread keeps the time). Returns the request id, or nil if the request
    /// could not be sent (`completion` has run then).
    @discardableResult
    func request(
        topic: [UInt8], payload: [UInt8], timeoutMilliseconds: UInt32, timeout: Duration, completion: @escaping CallCompletion
    ) -> UInt32? {
        let deadline = nanoseconds(since: epoch, at: .now + timeout)
        let outcome = control.withLock { state -> Result<UInt32, HeraldError> in
            switch state.phase {
            case .open:
                break
            case .reconnecting:
                // Not queued for the next broker: the caller's timeout is running, and a
                // question is better failed now than asked late.
                return .failure(.connectionLost("the bus is reconnecting to the broker"))
            case .connecting, .closing, .ended:
                return .failure(Connection.refusal(in: state.phase) ?? .closed)
            }
            let requestID = state.takeRequestID()
            state.pendingCalls[requestID] = PendingCall(completion: completion, deadline: deadline)
            if deadline < earliestCallDeadline.load(ordering: .relaxed) { earliestCallDeadline.store(deadline, ordering: .releasing) }
            return .success(requestID)
        }
        switch outcome {
        case .failure(let error):
            completion(.failure(error))
            return nil
        case .success(let requestID):
            let frame = FrameEncoder.encode(
                .request(Request(requestID: requestID, timeoutMilliseconds: timeoutMilliseconds, topic: topic, payload: payload)))
            if let rejection = enqueue(frame), let pending = takeCall(requestID) {
                pending(.failure(rejection))
                return nil
            }
            return requestID
        }
    }

    /// Removes the request `requestID` from the waiting ones and returns its completion (nil
    /// if it was answered already): for a timeout, or for the I/O thread's answer.
    func takeCall(_ requestID: UInt32) -> CallCompletion? {
        control.withLock { $0.pendingCalls.removeValue(forKey: requestID)?.completion }
    }

    /// The I/O thread's clock for request deadlines: nanoseconds after `epoch`.
    func nanosecondsNow() -> Int64 { nanoseconds(since: epoch, at: .now) }

    /// Fails with ``HeraldError/timeout`` every waiting request whose deadline is at or
    /// before `now`, and moves ``earliestCallDeadline`` to the next one.
    func expireCalls(now: Int64) {
        let expired = control.withLock { state -> [CallCompletion] in
            var expired: [CallCompletion] = []
            var next = Int64.max
            for (id, call) in state.pendingCalls {
                if call.deadline <= now {
                    expired.append(call.completion)
                    state.pendingCalls[id] = nil
                } else {
                    next = min(next, call.deadline)
                }
            }
            earliestCallDeadline.store(next, ordering: .releasing)
            return expired
        }
        for completion in expired { completion(.failure(.timeout)) }
    }

    /// The broker answered `requestID` with an ERROR: fails that request. False if no
    /// request of this connection has that id (the ERROR is about something else).
    func failCall(_ requestID: UInt32, _ error: ErrorFrame, topic: String?) -> Bool {
        guard let completion = takeCall(requestID) else { return false }
        completion(.failure(HeraldError.fromBroker(error, filter: topic)))
        return true
    }

    /// The WILL frame for ``BusOptions/lastWill``, registered as a request whose refusal is
    /// reported like a refused publish (by the next flush); nil without a will. Call with the
    /// `control` lock not held.
    func willFrame() -> [UInt8]? {
        control.withLock { willFrame(registeringIn: &$0) }
    }

    /// ``willFrame()`` with the `control` lock held (`state` is what it guards).
    func willFrame(registeringIn state: inout Control) -> [UInt8]? {
        guard let will = options.lastWill else { return nil }
        let requestID = state.takeRequestID()
        state.pendingRequests[requestID] = PendingRequest(filter: nil, subscriptionID: nil, completion: willCompletion)
        return FrameEncoder.encode(.will(Will(requestID: requestID, topic: will.topic, payload: will.payload, retain: will.retain)))
    }

    /// What happens to the broker's answer to WILL: a refusal is reported by the next flush.
    var willCompletion: Completion {
        { [weak self] result in
            if case .failure(let error) = result { self?.recordPublishError(error) }
        }
    }

    /// Sends the REPLY to call `callID`.
    func reply(callID: UInt32, status: UInt32, payload: [UInt8]) throws(HeraldError) {
        if let rejection = enqueue(FrameEncoder.encode(.reply(Reply(callID: callID, status: status, payload: payload)))) {
            throw rejection
        }
    }
}

/// `instant` as nanoseconds after `epoch` (for deadlines kept in an atomic).
func nanoseconds(since epoch: ContinuousClock.Instant, at instant: ContinuousClock.Instant) -> Int64 {
    let (seconds, attoseconds) = epoch.duration(to: instant).components
    return seconds &* 1_000_000_000 &+ attoseconds / 1_000_000_000
}
