import HeraldProtocol
import Testing

@testable import HeraldCore

@Suite("Byte queue")
struct ByteQueueTests {
    static func frame(_ length: Int) -> [UInt8] {
        FrameEncoder.encode(.publish(Publish(topic: "t", payload: [UInt8](repeating: 7, count: length - FrameHeader.size - 1))))
    }

    @Test func growthStopsAtTheCompactionThreshold() {
        var queue = ByteQueue()
        queue.compactionThreshold = 1_000_000
        let chunk = [UInt8](repeating: 1, count: 10_000)
        for _ in 0..<99 { queue.append(chunk) }
        #expect(queue.capacity == 1_000_000, "past the small sizes it grows once, to the threshold")
        // Consume most, then keep appending: the queue compacts instead of growing.
        queue.discard(900_000)
        for _ in 0..<80 { queue.append(chunk) }
        #expect(queue.capacity == 1_000_000)
        #expect(queue.count == 990_000 - 900_000 + 800_000)
    }

    @Test func contentsSurviveCompactionAndGrowth() {
        var queue = ByteQueue()
        var expected: [UInt8] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<500 {
            let bytes = (0..<Int.random(in: 1...3000, using: &generator)).map { UInt8(truncatingIfNeeded: $0 &+ round) }
            queue.append(bytes)
            expected += bytes
            let take = Int.random(in: 0...queue.count, using: &generator)
            let taken = Array(UnsafeRawBufferPointer(start: queue.readPointer, count: take))
            #expect(taken == Array(expected.prefix(take)))
            queue.discard(take)
            expected.removeFirst(take)
        }
    }

    @Test func truncationKeepsThePartlyWrittenFrameWhole() {
        var queue = ByteQueue()
        for length in [100, 200, 300] { queue.append(Self.frame(length)) }
        queue.consume(150)  // all of frame 1, half of frame 2
        let discarded = queue.truncateToFrameBoundary()
        #expect(discarded == 300, "frame 3 goes; the rest of frame 2 stays")
        #expect(queue.count == 150)
    }

    @Test func idleStorageIsReleased() {
        var queue = ByteQueue()
        queue.append([1, 2, 3])
        queue.releaseStorageIfEmpty()
        #expect(queue.capacity > 0, "not released while bytes are queued")
        queue.consume(3)
        queue.releaseStorageIfEmpty()
        #expect(queue.capacity == 0)
    }
}
