import HeraldProtocol
import Testing

@testable import Herald

/// The receive path's buffers without a socket: the I/O thread's side (``DeliveryBuffer``,
/// runs of verbatim MESSAGE frames behind ``DeliveryRun`` records) and the iterator's side
/// (``Inbox``), which must give back exactly the messages that went in.
@Suite("Delivery buffers")
struct DeliveryBufferTests {
    static let sender = PeerCredentials(pid: 7, uid: 1000, gid: 100)

    static func frame(_ topic: String, _ payload: String, from peer: UInt64 = 3) -> [UInt8] {
        FrameEncoder.encode(.message(Delivery(senderID: peer, sender: sender, topic: Array(topic.utf8), payload: Array(payload.utf8))))
    }

    /// Reads everything out of `buffers` as (topic, payload, droppedBefore).
    static func read(_ buffers: [DeliveryBuffer]) -> [(String, String, UInt64)] {
        var inbox = Inbox()
        inbox.buffers = buffers
        var out: [(String, String, UInt64)] = []
        while let message = inbox.next() {
            out.append((message.topic, String(decoding: message.payload, as: UTF8.self), message.droppedBefore))
        }
        _ = inbox.releaseBuffers()
        return out
    }

    static func append(_ frame: [UInt8], to buffer: DeliveryBuffer, run: Int, dropped: UInt64 = 0) {
        frame.withUnsafeBytes {
            buffer.append(frame: $0.baseAddress!, length: $0.count, topicRun: run, droppedBefore: dropped, charge: 1)
        }
    }

    @Test func framesOnOneTopicShareOneRunAndComeBackInOrder() {
        let buffer = DeliveryBuffer()
        let frames = (0..<3).map { Self.frame("power/battery", "\($0)") }
        for frame in frames { Self.append(frame, to: buffer, run: 1) }
        #expect(buffer.count == DeliveryRun.size + frames.map(\.count).reduce(0, +))
        let read = Self.read([buffer])
        #expect(read.map(\.0) == Array(repeating: "power/battery", count: 3))
        #expect(read.map(\.1) == ["0", "1", "2"])
        #expect(read.allSatisfy { $0.2 == 0 })
    }

    @Test func framesAreKeptVerbatim() {
        let buffer = DeliveryBuffer()
        let first = Self.frame("a", "x")
        let second = Self.frame("a", "y")
        Self.append(first, to: buffer, run: 1)
        Self.append(second, to: buffer, run: 1)
        let stored = Array(UnsafeRawBufferPointer(start: buffer.bytes + DeliveryRun.size, count: buffer.count - DeliveryRun.size))
        // No flag bit or private type byte was written into the wire frames.
        #expect(stored == first + second)
    }

    @Test func aDropCountStartsARunInFrontOfItsMessage() {
        let buffer = DeliveryBuffer()
        Self.append(Self.frame("a", "1"), to: buffer, run: 1)
        Self.append(Self.frame("a", "2"), to: buffer, run: 1, dropped: 5)
        Self.append(Self.frame("a", "3"), to: buffer, run: 1)
        let read = Self.read([buffer])
        #expect(read.map(\.1) == ["1", "2", "3"])
        #expect(read.map(\.2) == [0, 5, 0])
    }

    @Test func topicChangesAndReturnsAreDecoded() {
        let buffer = DeliveryBuffer()
        Self.append(Self.frame("a", "1"), to: buffer, run: 1)
        Self.append(Self.frame("bb", "2"), to: buffer, run: 2)
        Self.append(Self.frame("a", "3"), to: buffer, run: 3)
        #expect(Self.read([buffer]).map(\.0) == ["a", "bb", "a"])
    }

    @Test func aBatchOfFramesIsOneAppend() {
        let buffer = DeliveryBuffer()
        let frames = (0..<5).map { Self.frame("t/x", String(repeating: "p", count: $0)) }
        let joined = frames.flatMap { $0 }
        joined.withUnsafeBytes { buffer.append(frames: $0.baseAddress!, length: $0.count, topicRun: 9, charge: 5) }
        #expect(buffer.charge == 5)
        #expect(Self.read([buffer]).map(\.1) == ["", "p", "pp", "ppp", "pppp"])
    }

    @Test func readingCrossesBuffersAndSkipsEmptyOnes() {
        let first = DeliveryBuffer()
        let empty = DeliveryBuffer()
        let second = DeliveryBuffer()
        Self.append(Self.frame("a", "1"), to: first, run: 1)
        Self.append(Self.frame("a", "2"), to: second, run: 1)
        Self.append(Self.frame("b", "3"), to: second, run: 2, dropped: 2)
        let read = Self.read([first, empty, second])
        #expect(read.map(\.0) == ["a", "a", "b"])
        #expect(read.map(\.2) == [0, 0, 2])
    }

    @Test func aReusedBufferStartsFresh() {
        let buffer = DeliveryBuffer()
        Self.append(Self.frame("a", "1"), to: buffer, run: 1)
        buffer.removeAll()
        #expect(buffer.isEmpty && buffer.charge == 0)
        Self.append(Self.frame("a", "2"), to: buffer, run: 1)
        #expect(Self.read([buffer]).map(\.1) == ["2"])
    }

    @Test func viewsLendThePayloadInPlace() {
        let buffer = DeliveryBuffer()
        Self.append(Self.frame("a", "hello"), to: buffer, run: 1)
        var inbox = Inbox()
        inbox.buffers = [buffer]
        guard let view = inbox.nextView() else {
            Issue.record("no view")
            return
        }
        #expect(view.payloadCount == 5)
        #expect(view.withPayload { Array($0) } == Array("hello".utf8))
        #expect(view.string == "hello" && view.message.payload == Array("hello".utf8))
        #expect(view.sender == Message.Sender(peerID: 3, pid: 7, uid: 1000, gid: 100))
        _ = inbox.releaseBuffers()
    }
}
