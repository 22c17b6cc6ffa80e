import Herald
import Histogram

/// Topics the bench workers use.
enum BenchTopics {
    /// Throughput workloads (W1–W3, W5, W6, L1).
    static let data = "bench/data"
    /// W4: the pinger publishes here, the ponger subscribes.
    static let ping = "bench/ping"
    /// W4: the ponger republishes here, the pinger subscribes.
    static let pong = "bench/pong"
    /// W8: the requester's requests, answered by the responder.
    static let request = "bench/request"
    /// L1: publishing here tells the loopback broker to start sending.
    static let start = "bench/start"
}

/// The 24-byte header at the start of every bench payload; the layout of the peer harness's
/// `struct bench_hdr`, so both tools' messages look alike:
/// offset 0 kind (u8), 1 publisher index (u8), 2–7 zero, 8 sequence (u64 LE),
/// 16 send time (u64 LE, CLOCK_MONOTONIC ns).
enum BenchHeader {
    static let size = 24
    /// A measured data message.
    static let data = UInt8(ascii: "D")
    /// A W4 ping (and the pong that echoes it).
    static let ping = UInt8(ascii: "P")
    /// Messages whose sequence number has these bits clear carry an exact send time (see
    /// ``BenchPublisher``): one in 16.
    static let timedMask: UInt64 = 15

    /// A payload of `size` bytes ('x' after the header) with the header's fixed fields set.
    static func makePayload(size: Int, kind: UInt8, publisher: Int) -> [UInt8] {
        var payload = [UInt8](repeating: UInt8(ascii: "x"), count: max(size, BenchHeader.size))
        for offset in 0..<BenchHeader.size { payload[offset] = 0 }
        payload[0] = kind
        payload[1] = UInt8(truncatingIfNeeded: publisher)
        return payload
    }

    /// Writes the per-message fields.
    @inline(__always)
    static func stamp(_ payload: UnsafeMutableRawBufferPointer, sequence: UInt64, time: UInt64) {
        payload.storeBytes(of: sequence.littleEndian, toByteOffset: 8, as: UInt64.self)
        payload.storeBytes(of: time.littleEndian, toByteOffset: 16, as: UInt64.self)
    }

    /// The header fields, or nil if the payload is too short to hold a header.
    @inline(__always)
    static func read(_ payload: UnsafeRawBufferPointer) -> (kind: UInt8, publisher: Int, sequence: UInt64, sentAt: UInt64)? {
        guard payload.count >= BenchHeader.size else { return nil }
        return (
            payload[0], Int(payload[1]),
            UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            UInt64(littleEndian: payload.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        )
    }
}

/// Per-publisher sequence accounting: what was lost, duplicated or reordered.
///
/// The hot path (the next expected number) is one compare and one increment. Anything else
/// is rare and recorded as ranges: a forward jump records the skipped numbers as missing; a
/// number below the expected one is a late arrival (reordered) if it is in a missing range,
/// otherwise a duplicate.
struct SequenceChecker {
    /// Messages each publisher sends (sequence numbers 0..<perPublisher).
    let perPublisher: UInt64
    private var next: [UInt64]
    private var missing: [[Range<UInt64>]]
    /// Data messages seen, duplicates included.
    private(set) var received: UInt64 = 0
    /// Distinct data messages seen.
    private(set) var unique: UInt64 = 0
    private(set) var duplicates: UInt64 = 0
    private(set) var reordered: UInt64 = 0
    /// Forward jumps in a publisher's sequence (each starts a run of missing messages).
    private(set) var gapEvents: UInt64 = 0
    /// Messages with an unknown publisher index, an impossible sequence number, a wrong
    /// kind or a wrong size.
    private(set) var malformed: UInt64 = 0

    init(publishers: Int, perPublisher: UInt64) {
        self.perPublisher = perPublisher
        next = Array(repeating: 0, count: max(1, publishers))
        missing = Array(repeating: [], count: max(1, publishers))
    }

    @inline(__always)
    mutating func record(publisher: Int, sequence: UInt64) {
        received &+= 1
        if publisher < next.count && sequence == next[publisher] && sequence < perPublisher {
            next[publisher] = sequence &+ 1
            unique &+= 1
            return
        }
        recordUnusual(publisher: publisher, sequence: sequence)
    }

    mutating func recordMalformed() {
        received &+= 1
        malformed &+= 1
    }

    private mutating func recordUnusual(publisher: Int, sequence: UInt64) {
        guard publisher < next.count, sequence < perPublisher else {
            malformed &+= 1
            return
        }
        let expected = next[publisher]
        if sequence > expected {
            missing[publisher].append(expected..<sequence)
            gapEvents &+= 1
            next[publisher] = sequence &+ 1
            unique &+= 1
            return
        }
        // Below the expected number: a late arrival fills part of a recorded gap.
        if let index = missing[publisher].firstIndex(where: { $0.contains(sequence) }) {
            let range = missing[publisher][index]
            missing[publisher].remove(at: index)
            if range.lowerBound < sequence { missing[publisher].append(range.lowerBound..<sequence) }
            if sequence + 1 < range.upperBound { missing[publisher].append(sequence + 1..<range.upperBound) }
            reordered &+= 1
            unique &+= 1
        } else {
            duplicates &+= 1
        }
    }

    /// Messages never seen, counting each publisher's unreceived tail: final only once the
    /// stream has ended.
    var lost: UInt64 {
        var total: UInt64 = 0
        for publisher in next.indices {
            total += missing[publisher].reduce(0) { $0 + UInt64($1.count) }
            total += perPublisher - min(next[publisher], perPublisher)
        }
        return total
    }
}

/// What a bench subscriber does with each message: header and sequence checks, receive
/// times, one-way delays, drop notices. Shared by the W1–W6 subscribers and L1's receive
/// side, so the library measurement includes exactly the per-message work of the broker
/// measurements.
///
/// The clock is read for the first message, for the one message in 16 whose send time is
/// exact (``BenchHeader/timedMask``), and by ``markLast()`` when the last expected message
/// arrives: a read costs about 25 ns, a sizable share of a subscriber's whole per-message
/// cost, and the subscriber is what limits W1. So `last` can be up to 15 messages (per
/// publisher) early when a stream ends by idling, which at these rates is microseconds.
struct MessageCounter {
    let payloadSize: Int
    var checker: SequenceChecker
    /// Receive time of the first and the latest timed data message (0 before the first).
    private(set) var first: UInt64 = 0
    private(set) var last: UInt64 = 0
    /// Sum of ``Message/droppedBefore`` over the messages seen.
    private(set) var droppedBefore: UInt64 = 0
    /// Send-to-receive time of the timed messages, ns (publisher and subscriber read the same clock).
    private(set) var delays = Histogram<UInt64>(
        lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000_000, numberOfSignificantValueDigits: .two)

    init(publishers: Int, perPublisher: UInt64, payloadSize: Int) {
        self.payloadSize = payloadSize
        checker = SequenceChecker(publishers: publishers, perPublisher: perPublisher)
    }

    @inline(__always)
    mutating func count(_ message: Message) {
        droppedBefore &+= message.droppedBefore
        if message.isMappedPayload { Self.touchPages(message) }
        let header = message.withPayloadBytes { BenchHeader.read($0) }
        guard let header, header.kind == BenchHeader.data, message.payloadCount == payloadSize else {
            checker.recordMalformed()
            return
        }
        let timed = header.sequence & BenchHeader.timedMask == 0
        if timed || first == 0 {
            let now = monotonicNanos()
            if first == 0 { first = now }
            last = now
            if timed && now > header.sentAt { _ = delays.record(now - header.sentAt) }
        }
        checker.record(publisher: header.publisher, sequence: header.sequence)
    }

    /// Reads a byte in every 4 KiB page of a payload mapped from a sealed memfd, so W9 counts
    /// the mapping made real (its pages faulted in), not just a promise of it. An inline
    /// payload was copied whole by the library already.
    private static func touchPages(_ message: Message) {
        let sum = message.withPayloadBytes { bytes in
            var sum: UInt8 = 0
            for offset in stride(from: 0, to: bytes.count, by: 4096) { sum &+= bytes[offset] }
            return sum
        }
        pageSum &+= sum
    }
    /// Keeps the page reads from being optimized away.
    nonisolated(unsafe) private static var pageSum: UInt8 = 0

    /// Records the current time as the last message's receive time.
    mutating func markLast() {
        last = monotonicNanos()
    }
}
