import Herald
import Synchronization

/// W7's flooder: after `go`, publishes as fast as it can (stamped like the publisher's
/// messages) until the parent says `done`, then flushes and reports how many it sent.
struct BenchFlooder {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    /// Messages published between two looks at the stop flag.
    static let burst: UInt64 = 4096

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        let stop = StopFlag()
        channel.onDone { stop.raise() }
        channel.sendReady(bus)
        await channel.waitForGo()

        var payload = BenchHeader.makePayload(size: settings.size, kind: BenchHeader.data, publisher: settings.index)
        var sequence: UInt64 = 0
        var failure: String?
        let cpuStart = processCPUSeconds()
        let start = monotonicNanos()
        do {
            while !stop.isRaised {
                try await channel.publishStamped(
                    sequence + Self.burst, on: bus, topic: BenchTopics.data, payload: &payload, sequence: &sequence)
            }
            try await bus.flush()
        } catch {
            failure = error.description
        }
        channel.sendPublisherResult(sent: sequence, startNanos: start, cpuStart: cpuStart, error: failure)
        await bus.close()
    }

    /// Set from the channel's reader thread, read by the publishing task.
    final class StopFlag: Sendable {
        private let raised = Atomic<Bool>(false)
        func raise() { raised.store(true, ordering: .relaxed) }
        var isRaised: Bool { raised.load(ordering: .relaxed) }
    }
}
