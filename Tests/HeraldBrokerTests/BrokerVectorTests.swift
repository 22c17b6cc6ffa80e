import HeraldProtocol
import HeraldTestSupport
import Testing

@testable import HeraldCore

/// `Protocol/vectors/broker.json` against the routing core: for every case, the first frame
/// the broker queues is the ERROR (or WELCOME) the vector names; after a fatal ERROR the
/// peer is closing and nothing follows it; after a non-fatal one the session goes on.
@Suite("Broker vectors")
struct BrokerVectorTests {
    static let vectors = (try? BrokerVector.all()) ?? []

    @Test func vectorFileIsThereAndCoversBothStates() {
        #expect(Self.vectors.count >= 40)
        #expect(Set(Self.vectors.map(\.state)) == [.handshaking, .active])
    }

    @Test(arguments: vectors)
    func coreAnswersAsTheVectorSays(_ vector: BrokerVector) throws {
        let harness = CoreHarness()
        let peer = harness.connect(hello: vector.state == .active)
        harness.send(peer, vector.bytes)
        let frames = harness.drain(peer)
        let first = try #require(frames.first, "no reply to \(vector.name)")
        switch vector.reply {
        case .welcome:
            guard case .welcome = first else {
                Issue.record("expected WELCOME, got \(first)")
                return
            }
            #expect(peer.state == .active)
        case .error(let code, let fatal, let requestID):
            #expect(first == .error(ErrorFrame(code: code.rawValue, isFatal: fatal, requestID: requestID, message: first.errorBody?.message ?? "")))
            if fatal {
                #expect(frames.count == 1, "nothing may follow a fatal ERROR: \(frames)")
                #expect(peer.state == .closing)
            } else if vector.state == .active {
                #expect(frames.count == 1, "a refused frame has no other effect: \(frames)")
                harness.send(peer, .ping(token: 77))
                #expect(harness.drain(peer) == [.pong(token: 77)])
            } else {
                harness.send(peer, .hello(Hello(clientName: "again")))
                guard case .welcome = harness.drain(peer).first else {
                    Issue.record("a HELLO after a non-fatal refusal in the handshake must be welcomed")
                    return
                }
            }
        }
    }
}

extension Frame {
    /// The body of an ERROR frame.
    var errorBody: ErrorFrame? { if case .error(let error) = self { error } else { nil } }
}
