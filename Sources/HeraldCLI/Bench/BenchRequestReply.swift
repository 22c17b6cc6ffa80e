import Herald
import Histogram

/// W8's responder: answers every request on `bench/request` with the request's own payload
/// (`IncomingRequest.respond`), until the parent says `done`.
struct BenchResponder {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        let requests = try await bus.requests(on: BenchTopics.request)
        channel.onDone { Task { await requests.cancel() } }
        channel.sendReady(bus)
        let cpuStart = processCPUSeconds()
        var answered: UInt64 = 0
        for try await request in requests {
            try await request.respond(request.payload)
            answered += 1
        }
        var message = WorkerMessage(event: .result)
        message.ponger = PongerReport(echoed: answered, cpuSeconds: processCPUSeconds() - cpuStart)
        channel.send(message)
        await bus.close()
    }
}

/// W8's requester: one request in flight (`Bus.request`), each answer checked against the
/// request and its round trip recorded in an HdrHistogram after the warm-up. Reports like
/// W4's pinger, so the two compare directly: a request/reply against a publish that is
/// echoed on another topic.
struct BenchRequester {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        channel.sendReady(bus)
        await channel.waitForGo()
        var histogram = Histogram<UInt64>(
            lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var payload = BenchHeader.makePayload(size: settings.size, kind: BenchHeader.ping, publisher: 0)
        let warmup = UInt64(settings.warmup)
        let total = warmup + UInt64(settings.messages)
        var mismatched: UInt64 = 0
        var cpuStart = processCPUSeconds()
        var start = monotonicNanos()
        for sequence in 0..<total {
            if sequence == warmup {
                cpuStart = processCPUSeconds()
                start = monotonicNanos()
            }
            let sent = monotonicNanos()
            payload.withUnsafeMutableBytes { BenchHeader.stamp($0, sequence: sequence, time: sent) }
            // A lost answer would be a broker bug: the timeout turns it into a failed run.
            let answer = try await bus.request(BenchTopics.request, payload, timeout: .seconds(5))
            let received = monotonicNanos()
            let header = answer.payload.withUnsafeBytes { BenchHeader.read($0) }
            if header?.kind != BenchHeader.ping || header?.sequence != sequence { mismatched += 1 }
            if sequence >= warmup { _ = histogram.record(received - sent) }
            channel.progress.store(sequence + 1, ordering: .relaxed)
        }
        let end = monotonicNanos()
        let cpuSeconds = processCPUSeconds() - cpuStart

        func micros(_ nanos: UInt64) -> Double { Double(nanos) / 1000 }
        var message = WorkerMessage(event: .result)
        let latency = BenchResult.Latency(
            roundTrips: histogram.totalCount, warmup: warmup, mismatched: mismatched, minMicros: micros(histogram.min),
            meanMicros: histogram.mean / 1000, p50Micros: micros(histogram.valueAtPercentile(50)),
            p90Micros: micros(histogram.valueAtPercentile(90)), p99Micros: micros(histogram.valueAtPercentile(99)),
            p999Micros: micros(histogram.valueAtPercentile(99.9)), maxMicros: micros(histogram.maxRecorded),
            roundTripsPerSecond: 0)
        message.pinger = PingerReport(latency: latency, startNanos: start, endNanos: end, cpuSeconds: cpuSeconds)
        channel.send(message)
        await bus.close()
    }
}
