#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

// The messages `herald bench` and its worker processes exchange: one JSON object per line,
// parent → worker on the worker's stdin, worker → parent on its stdout.

/// A command from the parent.
struct ParentMessage: Codable, Sendable {
    enum Command: String, Codable, Sendable {
        /// Start publishing (publishers, the pinger, the library worker).
        case go
        /// Every publisher has flushed: subscribers may stop after the idle timeout; the
        /// ponger stops.
        case done
        /// Exit now.
        case quit
    }

    var command: Command
}

/// A report from a worker.
struct WorkerMessage: Codable, Sendable {
    enum Event: String, Codable, Sendable {
        /// Connected (and subscribed, for a subscriber: the subscription is live).
        case ready
        /// How far it got (`count`), a few times a second.
        case progress
        /// The measurement; the worker exits after it.
        case result
        /// It could not go on (`error` says why); the worker exits after it.
        case failed
    }

    var event: Event
    /// `ready`: the broker's pid and name from WELCOME.
    var brokerPID: UInt32?
    var serverName: String?
    /// `progress`: messages sent or received, or round trips, so far.
    var count: UInt64?
    var error: String?
    var publisher: PublisherReport?
    var subscriber: SubscriberReport?
    var pinger: PingerReport?
    var ponger: PongerReport?
    var library: LibraryReport?

    init(event: Event) {
        self.event = event
    }
}

/// A publisher's measurement.
struct PublisherReport: Codable, Sendable {
    var sent: UInt64
    /// CLOCK_MONOTONIC ns when the first publish started and when the final flush returned.
    var startNanos: UInt64
    var endNanos: UInt64
    /// CPU seconds of the whole process over that interval.
    var cpuSeconds: Double
    var error: String?
}

/// Why a subscriber stopped.
enum SubscriberStop: String, Codable, Sendable {
    /// It had every message (publishers × messages distinct ones).
    case complete
    /// Nothing arrived for the idle timeout after the publishers were done.
    case idle
    /// The broker ended the connection (a slow-consumer disconnect, GOODBYE, an error).
    case disconnected
}

/// A subscriber's measurement.
struct SubscriberReport: Codable, Sendable {
    var received: UInt64
    var unique: UInt64
    var lost: UInt64
    var gapEvents: UInt64
    var duplicates: UInt64
    var reordered: UInt64
    var malformed: UInt64
    /// CLOCK_MONOTONIC ns of the first and last data message (0 if none arrived).
    var firstNanos: UInt64
    var lastNanos: UInt64
    /// CPU seconds of the whole process from the first message to the end.
    var cpuSeconds: Double
    /// One-way delay (publisher's send time to receive time) of every 16th message, in µs.
    var delayP50Micros: Double
    var delayP99Micros: Double
    var delayMaxMicros: Double
    /// `BusEvent.messagesDropped` events, and the messages they announced.
    var dropNotices: UInt64
    var droppedAnnounced: UInt64
    /// Sum of `Message.droppedBefore`.
    var droppedBefore: UInt64
    var stop: SubscriberStop
    /// Why the connection ended, if the broker ended it.
    var disconnectReason: String?
    /// The broker disconnected it for falling behind (slow-consumer policy `disconnect`).
    var slowConsumerDisconnect: Bool
}

/// The W4 pinger's measurement.
struct PingerReport: Codable, Sendable {
    /// The round trips as the report shows them; the parent, which knows the window, fills
    /// in `roundTripsPerSecond`.
    var latency: BenchResult.Latency
    var startNanos: UInt64
    var endNanos: UInt64
    var cpuSeconds: Double
}

/// The W4 ponger's count.
struct PongerReport: Codable, Sendable {
    var echoed: UInt64
    var cpuSeconds: Double
}

/// L1: the library alone, against a loopback broker that costs next to nothing.
struct LibraryReport: Codable, Sendable {
    var messages: UInt64
    var payloadBytes: Int
    /// Seconds the publish calls took, and until the flush after them returned.
    var publishCallSeconds: Double
    var publishTotalSeconds: Double
    /// CPU seconds of the whole process during the publish phase, and of the loopback
    /// broker's thread in it (the library's share is the difference).
    var publishCPUSeconds: Double
    var publishLoopbackCPUSeconds: Double
    /// PUBLISH frames the loopback broker read, and how many were out of sequence.
    var publishArrived: UInt64
    var publishOutOfOrder: UInt64
    /// First to last message handed out by the subscription.
    var receiveSeconds: Double
    var receiveCPUSeconds: Double
    var receiveLoopbackCPUSeconds: Double
    var receiveUnique: UInt64
    var receiveLost: UInt64
    var receiveDuplicates: UInt64
    var receiveReordered: UInt64
}

/// Encodes and decodes the JSON lines.
enum BenchJSON {
    static func line(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return "{}\n" }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func decode<T: Decodable>(_ type: T.Type, from line: ArraySlice<UInt8>) -> T? {
        try? JSONDecoder().decode(type, from: Data(line))
    }
}
