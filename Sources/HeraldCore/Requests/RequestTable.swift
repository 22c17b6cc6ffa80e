/// The requests waiting for a reply (PROTOCOL.md §4.14–§4.17), the way dbus-broker keeps its
/// reply slots apart from routing: each REQUEST the broker hands to a responder becomes a
/// call, known by (responder, call id), that remembers who asked and under which request id.
///
/// A REPLY is matched by the connection it comes from and the call id the broker gave that
/// connection, so only the responder a request went to can answer it: another peer naming the
/// same call id finds nothing. Pure bookkeeping: no I/O, no peers, no clock of its own.
struct RequestTable {
    /// What the broker remembers about one call.
    struct PendingCall: Equatable {
        /// Peer id of the connection that sent the REQUEST.
        var requester: UInt64
        /// The REQUEST's `request_id`.
        var requestID: UInt32
        /// Peer id of the connection the CALL went to.
        var responder: UInt64
        /// The CALL's `call_id` on that connection.
        var callID: UInt32
        /// Monotonic seconds after which it times out; infinity for none.
        var deadline: Double
        /// The REQUEST's topic, kept only while a monitor may want the reply's copy.
        var topic: [UInt8]? = nil
    }

    private struct CallKey: Hashable {
        var responder: UInt64
        var callID: UInt32
    }

    private var calls: [CallKey: PendingCall] = [:]
    /// Per requester: its waiting request ids, and the call each became.
    private var byRequester: [UInt64: [UInt32: CallKey]] = [:]
    /// Per responder: the calls it has yet to answer.
    private var byResponder: [UInt64: Set<UInt32>] = [:]
    /// The next call id to try; ids are never 0.
    private var nextCallID: UInt32 = 1
    /// Calls with a finite deadline, so the timer skips the scan when there are none.
    private var timedCount = 0

    /// Calls waiting for a reply.
    var count: Int { calls.count }

    /// Requests `requester` has waiting.
    func waitingCount(of requester: UInt64) -> Int { byRequester[requester]?.count ?? 0 }

    /// Whether `requester` has a request `requestID` waiting.
    func isWaiting(_ requester: UInt64, _ requestID: UInt32) -> Bool { byRequester[requester]?[requestID] != nil }

    /// Records a call from `requester` (its `requestID`) to `responder`; returns the call id
    /// the CALL frame carries: unique among that responder's waiting calls, never 0.
    mutating func add(requester: UInt64, requestID: UInt32, responder: UInt64, deadline: Double, topic: [UInt8]? = nil) -> UInt32 {
        var callID = nextCallID
        // A responder holds far fewer than 2^32 calls, so this finds a free id quickly.
        while callID == 0 || byResponder[responder]?.contains(callID) == true { callID &+= 1 }
        nextCallID = callID &+ 1
        let key = CallKey(responder: responder, callID: callID)
        calls[key] = PendingCall(
            requester: requester, requestID: requestID, responder: responder, callID: callID, deadline: deadline, topic: topic)
        byRequester[requester, default: [:]][requestID] = key
        byResponder[responder, default: []].insert(callID)
        if deadline.isFinite { timedCount += 1 }
        return callID
    }

    /// Takes the call `callID` of `responder` (its REPLY arrived); nil if none is waiting.
    mutating func answer(responder: UInt64, callID: UInt32) -> PendingCall? {
        remove(CallKey(responder: responder, callID: callID))
    }

    /// Takes every call that went to `responder` (its connection is closing): their
    /// requesters are to be told.
    mutating func removeCalls(to responder: UInt64) -> [PendingCall] {
        guard let ids = byResponder[responder] else { return [] }
        defer { byResponder[responder] = nil }
        return ids.sorted().compactMap { remove(CallKey(responder: responder, callID: $0)) }
    }

    /// Forgets every request `requester` has waiting (its connection is closing); a later
    /// REPLY to one of them is refused as an unknown call.
    mutating func removeRequests(of requester: UInt64) {
        guard let keys = byRequester[requester] else { return }
        for key in keys.values { _ = remove(key) }
        byRequester[requester] = nil
    }

    /// Takes every call whose deadline is at or before `now`.
    mutating func removeExpired(now: Double) -> [PendingCall] {
        guard timedCount > 0 else { return [] }
        let expired = calls.values.filter { $0.deadline <= now }.sorted { ($0.requester, $0.requestID) < ($1.requester, $1.requestID) }
        for call in expired { _ = remove(CallKey(responder: call.responder, callID: call.callID)) }
        return expired
    }

    /// Whether the three indexes agree (for tests and fuzzing).
    func isConsistent() -> Bool {
        let requesterKeys = byRequester.values.reduce(0) { $0 + $1.count }
        let responderKeys = byResponder.values.reduce(0) { $0 + $1.count }
        guard requesterKeys == calls.count, responderKeys == calls.count,
            timedCount == calls.values.filter({ $0.deadline.isFinite }).count
        else { return false }
        return calls.allSatisfy { key, call in
            byRequester[call.requester]?[call.requestID] == key && byResponder[key.responder]?.contains(key.callID) == true
        }
    }

    private mutating func remove(_ key: CallKey) -> PendingCall? {
        guard let call = calls.removeValue(forKey: key) else { return nil }
        // The per-peer collections stay when they empty (a connection that asks or answers
        // once usually does again); they go when the peer does (`removeRequests`, `removeCalls`).
        byRequester[call.requester]?[call.requestID] = nil
        byResponder[key.responder]?.remove(key.callID)
        if call.deadline.isFinite { timedCount -= 1 }
        return call
    }
}
