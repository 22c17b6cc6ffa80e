import HeraldProtocol
import Testing

@testable import HeraldCore

/// Request/reply in the routing core (PROTOCOL.md §4.14–§4.17, §6.4): one responder per
/// request, taking turns; replies only from the connection the call went to; every way a
/// request can go unanswered is answered with its own error.
@Suite("Request/reply")
struct RequestTests {
    private func serve(_ harness: CoreHarness, _ peer: PeerPointer, _ filter: String, id: UInt32) {
        harness.send(peer, .subscribe(Subscribe(requestID: id + 1000, subscriptionID: id, filter: filter, responder: true)))
        #expect(harness.drain(peer) == [.ok(requestID: id + 1000)])
    }

    private func ask(_ harness: CoreHarness, _ peer: PeerPointer, _ topic: String, _ text: String, id: UInt32, timeout: UInt32 = 0) {
        harness.send(peer, .request(Request(requestID: id, timeoutMilliseconds: timeout, topic: topic, payload: Array(text.utf8))))
    }

    private static func calls(_ frames: [Frame]) -> [Call] {
        frames.compactMap { if case .call(let call) = $0 { call } else { nil } }
    }

    private static func responses(_ frames: [Frame]) -> [Response] {
        frames.compactMap { if case .response(let response) = $0 { response } else { nil } }
    }

    @Test func aRequestGoesToOneResponderAndTheReplyOnlyToTheRequester() {
        let harness = CoreHarness()
        let responder = harness.connect(pid: 300, name: "settings")
        serve(harness, responder, "settings/#", id: 7)
        let bystander = harness.connect(name: "bystander")
        harness.subscribe(bystander, "#", id: 1)
        let requester = harness.connect(pid: 400, name: "client")
        ask(harness, requester, "settings/theme", "get", id: 42)

        let calls = Self.calls(harness.drain(responder))
        #expect(calls.count == 1)
        let call = calls[0]
        #expect(call.subscriptionID == 7 && call.callID != 0)
        #expect(call.senderID == requester.peerID && call.sender.pid == 400)
        #expect(String(decoding: call.topic, as: UTF8.self) == "settings/theme" && call.payload == Array("get".utf8))
        #expect(harness.drain(bystander).isEmpty, "a request is not a message: plain subscribers never see it")

        harness.send(responder, .reply(Reply(callID: call.callID, payload: Array("dark".utf8))))
        let responses = Self.responses(harness.drain(requester))
        #expect(responses == [Response(senderID: responder.peerID, sender: PeerCredentials(pid: 300, uid: 1000, gid: 1000), requestID: 42, payload: Array("dark".utf8))])
        #expect(harness.drain(bystander).isEmpty)
        #expect(harness.core.statistics.requestsRouted == 1 && harness.core.statistics.responsesDelivered == 1)
        #expect(harness.core.requests.count == 0 && harness.core.requests.isConsistent())
    }

    @Test func nobodyServingTheTopicIsAnsweredAtOnce() {
        let harness = CoreHarness()
        let listener = harness.connect()
        harness.subscribe(listener, "settings/#", id: 1)  // a plain subscriber is no responder
        let requester = harness.connect()
        ask(harness, requester, "settings/theme", "get", id: 5)
        let error = CoreHarness.firstError(harness.drain(requester))
        #expect(error?.knownCode == .noResponders && error?.requestID == 5 && error?.isFatal == false)
        #expect(harness.core.statistics.requestsWithoutResponder == 1)
    }

    @Test func severalRespondersTakeTurns() {
        let harness = CoreHarness()
        let first = harness.connect(name: "first")
        let second = harness.connect(name: "second")
        serve(harness, first, "work/+", id: 1)
        serve(harness, second, "work/#", id: 1)
        let requester = harness.connect()
        for id in UInt32(1)...4 { ask(harness, requester, "work/job", "\(id)", id: id) }
        #expect(Self.calls(harness.drain(first)).count == 2)
        #expect(Self.calls(harness.drain(second)).count == 2)
    }

    @Test func concurrentRequestsOnOneConnectionAreMatchedById() {
        let harness = CoreHarness()
        let responder = harness.connect()
        serve(harness, responder, "echo", id: 1)
        let requester = harness.connect()
        for id in UInt32(10)..<20 { ask(harness, requester, "echo", "\(id)", id: id) }
        // Answered in reverse order: each response still names its own request.
        for call in Self.calls(harness.drain(responder)).reversed() {
            harness.send(responder, .reply(Reply(callID: call.callID, payload: call.payload)))
        }
        let responses = Self.responses(harness.drain(requester))
        #expect(responses.count == 10)
        #expect(responses.allSatisfy { String(decoding: $0.payload, as: UTF8.self) == "\($0.requestID)" })
        #expect(responses.map(\.requestID) == Array((UInt32(10)..<20).reversed()))
    }

    @Test func onlyTheConnectionACallWentToCanAnswerIt() {
        let harness = CoreHarness()
        let responder = harness.connect()
        serve(harness, responder, "settings/get", id: 1)
        let forger = harness.connect(name: "forger")
        let requester = harness.connect()
        ask(harness, requester, "settings/get", "theme", id: 3)
        let call = Self.calls(harness.drain(responder))[0]
        // Another peer naming the same call id: refused, and the request still waits.
        harness.send(forger, .reply(Reply(callID: call.callID, payload: Array("forged".utf8))))
        let refusal = CoreHarness.firstError(harness.drain(forger))
        #expect(refusal?.knownCode == .unknownCall && refusal?.requestID == call.callID && refusal?.isFatal == false)
        #expect(harness.drain(requester).isEmpty)
        harness.send(responder, .reply(Reply(callID: call.callID, payload: Array("real".utf8))))
        #expect(Self.responses(harness.drain(requester)).map(\.payload) == [Array("real".utf8)])
        // A second answer to the same call: refused too.
        harness.send(responder, .reply(Reply(callID: call.callID, payload: Array("again".utf8))))
        #expect(CoreHarness.firstError(harness.drain(responder))?.knownCode == .unknownCall)
        #expect(harness.drain(requester).isEmpty)
    }

    @Test func aResponderThatLeavesFailsItsRequestsAtOnce() {
        let harness = CoreHarness()
        let responder = harness.connect(pid: 900)
        serve(harness, responder, "slow/#", id: 1)
        let requester = harness.connect()
        ask(harness, requester, "slow/a", "", id: 1)
        ask(harness, requester, "slow/b", "", id: 2)
        #expect(Self.calls(harness.drain(responder)).count == 2)
        harness.core.remove(responder, reason: "test: responder exits")
        let errors = harness.drain(requester).compactMap { if case .error(let error) = $0 { error } else { nil } }
        #expect(errors.map(\.requestID).sorted() == [1, 2])
        #expect(errors.allSatisfy { $0.knownCode == .responderGone && !$0.isFatal && $0.message.contains("pid 900") })
        #expect(harness.core.requests.count == 0 && harness.core.requests.isConsistent())
    }

    @Test func aRequesterThatLeavesIsForgottenAndALateReplyIsRefused() {
        let harness = CoreHarness()
        let responder = harness.connect()
        serve(harness, responder, "q", id: 1)
        let requester = harness.connect()
        ask(harness, requester, "q", "", id: 1)
        let call = Self.calls(harness.drain(responder))[0]
        harness.core.remove(requester, reason: "test: requester exits")
        #expect(harness.core.requests.count == 0)
        harness.send(responder, .reply(Reply(callID: call.callID, payload: [])))
        #expect(CoreHarness.firstError(harness.drain(responder))?.knownCode == .unknownCall)
    }

    @Test func theBrokerTimesARequestOutAndRefusesALateReply() {
        let harness = CoreHarness()
        let responder = harness.connect()
        serve(harness, responder, "q", id: 1)
        let requester = harness.connect()
        ask(harness, requester, "q", "", id: 8, timeout: 1500)
        let call = Self.calls(harness.drain(responder))[0]
        _ = harness.core.expireDeadlines(now: harness.clock + 1)
        #expect(harness.drain(requester).isEmpty, "not yet: 1.5 s")
        _ = harness.core.expireDeadlines(now: harness.clock + 2)
        let error = CoreHarness.firstError(harness.drain(requester))
        #expect(error?.knownCode == .requestTimeout && error?.requestID == 8)
        harness.send(responder, .reply(Reply(callID: call.callID, payload: [])))
        #expect(CoreHarness.firstError(harness.drain(responder))?.knownCode == .unknownCall)
        #expect(harness.core.statistics.requestTimeouts == 1)
    }

    @Test func requestIdsAndTheConnectionQuotaAreChecked() {
        let harness = CoreHarness { $0.maxPendingRequestsPerPeer = 2 }
        let responder = harness.connect()
        serve(harness, responder, "q", id: 1)
        let requester = harness.connect()
        ask(harness, requester, "q", "", id: 1)
        ask(harness, requester, "q", "", id: 1)
        #expect(CoreHarness.firstError(harness.drain(requester))?.knownCode == .duplicateRequest)
        ask(harness, requester, "q", "", id: 2)
        ask(harness, requester, "q", "", id: 3)
        let error = CoreHarness.firstError(harness.drain(requester))
        #expect(error?.knownCode == .tooManyRequests && error?.requestID == 3)
        #expect(Self.calls(harness.drain(responder)).count == 2)
    }

    @Test func aRespondersFailureReachesTheRequesterWithItsCode() {
        let harness = CoreHarness()
        let responder = harness.connect()
        serve(harness, responder, "q", id: 1)
        let requester = harness.connect()
        ask(harness, requester, "q", "", id: 1)
        let call = Self.calls(harness.drain(responder))[0]
        harness.send(responder, .reply(Reply(callID: call.callID, status: 404, payload: Array("no such setting".utf8))))
        let response = Self.responses(harness.drain(requester)).first
        #expect(response?.status == 404 && response?.payload == Array("no such setting".utf8))
    }

    @Test func aResponderSubscriptionGetsNoMessagesAndNoRetainedOnes() {
        let harness = CoreHarness()
        let publisher = harness.connect()
        harness.send(publisher, .publish(Publish(topic: "settings/theme", payload: Array("dark".utf8), retain: true)))
        let responder = harness.connect(capabilities: Capabilities.retained)
        serve(harness, responder, "settings/#", id: 1)  // expects OK alone: no RETAINED after it
        harness.publish(publisher, "settings/theme", Array("light".utf8))
        #expect(harness.drain(responder).isEmpty)
        // Unsubscribing a responder subscription takes it out of the responder index.
        harness.send(responder, .unsubscribe(Unsubscribe(requestID: 9, subscriptionID: 1)))
        #expect(harness.drain(responder) == [.ok(requestID: 9)])
        let requester = harness.connect()
        ask(harness, requester, "settings/theme", "", id: 1)
        #expect(CoreHarness.firstError(harness.drain(requester))?.knownCode == .noResponders)
    }

    @Test func badRequestsAndRepliesGetTheirOwnErrors() {
        let harness = CoreHarness()
        let peer = harness.connect()
        ask(harness, peer, "bad//topic", "", id: 4)
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .invalidTopic)
        ask(harness, peer, "$SYS/x", "", id: 5)
        #expect(CoreHarness.firstError(harness.drain(peer))?.knownCode == .reservedTopic)
        // Undefined flags: ignored with unsupported_flags, the request id echoed.
        var flagged = FrameEncoder.encode(.request(Request(requestID: 6, timeoutMilliseconds: 0, topic: "q", payload: [])))
        flagged[5] = 0x01
        harness.send(peer, flagged)
        let flagError = CoreHarness.firstError(harness.drain(peer))
        #expect(flagError?.knownCode == .unsupportedFlags && flagError?.requestID == 6)
        // A topic length past the body: the stream cannot be trusted any more.
        var broken = FrameEncoder.encode(.request(Request(requestID: 7, timeoutMilliseconds: 0, topic: "q", payload: [])))
        broken[6] = 0x09
        harness.send(peer, broken)
        let fatal = CoreHarness.firstError(harness.drain(peer))
        #expect(fatal?.knownCode == .malformedFrame && fatal?.isFatal == true)
        #expect(peer.state == .closing)

        let responder = harness.connect()
        var shortReply = FrameEncoder.encode(.reply(Reply(callID: 1, payload: [])))
        shortReply.removeLast(4)
        shortReply[0] = 4
        harness.send(responder, shortReply)
        #expect(CoreHarness.firstError(harness.drain(responder))?.knownCode == .malformedFrame)
    }

    @Test func aRequesterThatDoesNotReadItsResponsesIsDisconnectedAndTold() {
        let harness = CoreHarness { $0.maxFrameSize = 64 << 10 }
        let responder = harness.connect()
        serve(harness, responder, "big", id: 1)
        let requester = harness.connect(outputLimit: 64 << 10)
        // Leave the requester's output unread while big answers pile up.
        let answer = [UInt8](repeating: 7, count: 60 << 10)
        var answered = 0
        while requester.state == .active && answered < 10 {
            ask(harness, requester, "big", "", id: UInt32(answered + 1))
            guard let call = Self.calls(harness.drain(responder)).first else {
                Issue.record("the request did not reach the responder")
                return
            }
            harness.send(responder, .reply(Reply(callID: call.callID, payload: answer)))
            answered += 1
        }
        // One response past the output limit is queued; the one after that disconnects.
        #expect(requester.state == .closing && answered == 3)
        let frames = harness.drain(requester)
        #expect(CoreHarness.firstError(frames)?.knownCode == .slowConsumer)
        #expect(harness.core.statistics.slowConsumersDisconnected == 1)
    }
}

/// The request table's three indexes, by themselves.
@Suite("Request table")
struct RequestTableTests {
    @Test func callIdsAreNeverZeroAndUniquePerResponder() {
        var table = RequestTable()
        var ids: Set<UInt32> = []
        for requestID in UInt32(0)..<100 {
            ids.insert(table.add(requester: 1, requestID: requestID, responder: 2, deadline: .infinity))
        }
        #expect(ids.count == 100 && !ids.contains(0))
        #expect(table.isConsistent() && table.waitingCount(of: 1) == 100)
        #expect(table.removeCalls(to: 2).count == 100)
        #expect(table.count == 0 && table.isConsistent())
    }

    @Test func expiryTakesOnlyWhatIsDue() {
        var table = RequestTable()
        _ = table.add(requester: 1, requestID: 1, responder: 9, deadline: 10)
        _ = table.add(requester: 1, requestID: 2, responder: 9, deadline: 20)
        _ = table.add(requester: 2, requestID: 1, responder: 9, deadline: .infinity)
        #expect(table.removeExpired(now: 15).map(\.requestID) == [1])
        #expect(table.count == 2 && table.isConsistent())
        table.removeRequests(of: 1)
        #expect(table.count == 1 && !table.isWaiting(1, 2) && table.isWaiting(2, 1))
        #expect(table.isConsistent())
    }
}
