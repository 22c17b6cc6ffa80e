import Foundation
import HeraldProtocol

/// A subscriber and a publisher that keep checking, while something hostile goes on, that
/// the broker still routes and still answers PING.
final class Bystander: @unchecked Sendable {
    let subscriber: RawConnection
    let publisher: RawConnection
    private var sequence: UInt64 = 0

    init(_ address: String) throws {
        (subscriber, _) = try RawConnection.handshake(address, name: "bystander-sub")
        try subscriber.subscribe("bystander/#", id: 1)
        (publisher, _) = try RawConnection.handshake(address, name: "bystander-pub")
    }

    /// Publishes one message, flushes with PING and checks the subscriber got the message.
    /// Returns the PING's round trip in seconds.
    func roundTrip() throws -> Double {
        sequence += 1
        let payload = withUnsafeBytes(of: sequence.littleEndian) { Array($0) }
        let start = DispatchTime.now().uptimeNanoseconds
        publisher.send(.publish(Publish(topic: "bystander/check", payload: payload)))
        try publisher.sync(token: sequence)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let delivered = try subscriber.readFrame(timeout: 10)
        guard delivered?.messagePayload == payload else {
            throw RawConnectionError.unexpected("bystander got \(String(describing: delivered)) instead of message \(sequence)")
        }
        return seconds
    }

    /// Round trips, one after the other, for `seconds`; returns their latencies.
    func keepChecking(for seconds: Double) throws -> [Double] {
        let deadline = Date().addingTimeInterval(seconds)
        var latencies: [Double] = []
        while Date() < deadline { latencies.append(try roundTrip()) }
        return latencies
    }
}

extension Array where Element == Double {
    /// The value below which `fraction` of the elements lie (nearest rank).
    func percentile(_ fraction: Double) -> Double {
        guard !isEmpty else { return .nan }
        let sorted = self.sorted()
        return sorted[Swift.min(sorted.count - 1, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)]
    }
}
