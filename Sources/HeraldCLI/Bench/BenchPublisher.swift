import Herald

/// The publisher worker: after `go`, publishes N messages back to back from one task, then
/// flushes, so its end time is when the broker had routed everything.
///
/// Every message carries a send time, but the clock is read only for every 16th (sequence
/// number a multiple of 16) and the others repeat that reading: a clock read costs about
/// 25 ns here, a third of what publishing a small message costs the library, and the
/// subscribers measure delays on exactly those messages whose stamp is exact.
struct BenchPublisher {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        channel.sendReady(bus)
        await channel.waitForGo()

        var payload = BenchHeader.makePayload(size: settings.size, kind: BenchHeader.data, publisher: settings.index)
        let topic = BenchTopics.data
        let count = UInt64(settings.messages)
        var sequence: UInt64 = 0
        var failure: String?
        let cpuStart = processCPUSeconds()
        let start = monotonicNanos()
        do {
            if settings.sealed {
                try await channel.publishSealed(count, on: bus, topic: topic, template: payload, sequence: &sequence)
            } else {
                try await channel.publishStamped(count, on: bus, topic: topic, payload: &payload, sequence: &sequence)
            }
            try await bus.flush()
        } catch {
            failure = error.description
        }
        channel.sendPublisherResult(sent: sequence, startNanos: start, cpuStart: cpuStart, error: failure)
        await bus.close()
    }
}

extension WorkerChannel {
    /// Reports a publishing worker's result: `sent` messages since `startNanos` (until now),
    /// the CPU used since `cpuStart`, and the error that stopped it, if any.
    func sendPublisherResult(sent: UInt64, startNanos: UInt64, cpuStart: Double, error: String?) {
        let end = monotonicNanos()
        progress.store(sent, ordering: .relaxed)
        var message = WorkerMessage(event: .result)
        message.publisher = PublisherReport(
            sent: sent, startNanos: startNanos, endNanos: end, cpuSeconds: processCPUSeconds() - cpuStart, error: error)
        send(message)
    }
}
