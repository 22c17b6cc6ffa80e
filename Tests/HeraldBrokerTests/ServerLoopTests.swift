import HeraldCore
import HeraldProtocol
import HeraldServer
import Testing

/// The epoll server's own paths, in process: end of stream with output still queued, a
/// fatal error written before the close, a stop with peers connected.
@Suite("Server loop", .timeLimit(.minutes(1)))
struct ServerLoopTests {
    @Test func endOfStreamStillDeliversWhatIsQueuedThenCloses() throws {
        let harness = try ServerHarness()
        let client = try TestSocket(harness.address)
        client.send(.hello(Hello(clientName: "half-closer")))
        guard case .welcome = try client.readFrame() else { throw TestFailure("no WELCOME") }
        client.send(.subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: "a/#")))
        var burst: [UInt8] = []
        for index in 0..<2000 { FrameEncoder.encode(.publish(Publish(topic: "a/b", payload: Array("\(index)".utf8))), into: &burst) }
        client.send(burst)
        client.shutdownWriting()
        let frames = try client.readUntilClosed()
        #expect(frames.first == .ok(requestID: 1))
        #expect(frames.dropFirst().compactMap(\.messagePayload) == (0..<2000).map { Array("\($0)".utf8) })
        #expect(harness.stop() == .stopRequested)
    }

    @Test func aFatalErrorIsWrittenThenTheSocketIsClosed() throws {
        let harness = try ServerHarness()
        let client = try TestSocket(harness.address)
        client.send(Array("GET / HTTP/1.1\r\n\r\n".utf8))
        let frames = try client.readUntilClosed()
        #expect(frames.count == 1)
        #expect(frames.first?.errorBody?.knownCode == .handshakeRequired)
        // The server goes on.
        let next = try TestSocket(harness.address)
        next.send(.hello(Hello(clientName: "next")))
        guard case .welcome = try next.readFrame() else { throw TestFailure("no WELCOME after a refused peer") }
        #expect(harness.stop() == .stopRequested)
    }

    @Test func stopSaysGoodbyeToConnectedPeers() throws {
        let harness = try ServerHarness()
        let client = try TestSocket(harness.address)
        client.send(.hello(Hello(clientName: "stays")))
        guard case .welcome = try client.readFrame() else { throw TestFailure("no WELCOME") }
        #expect(harness.stop() == .stopRequested)
        let frames = try client.readUntilClosed()
        guard case .goodbye(let goodbye) = frames.last else { throw TestFailure("no GOODBYE: \(frames)") }
        #expect(goodbye.reason == ErrorCode.brokerShuttingDown.rawValue)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Frame {
    var messagePayload: [UInt8]? { if case .message(let delivery) = self { delivery.payload } else { nil } }
}
