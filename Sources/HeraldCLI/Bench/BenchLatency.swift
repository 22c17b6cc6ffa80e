import Herald
import Histogram

/// W4's ponger: republishes every message from `bench/ping` on `bench/pong`, until the
/// parent says `done`.
struct BenchPonger {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        let pings = try await bus.subscribe(BenchTopics.ping)
        channel.onDone { Task { await pings.cancel() } }
        channel.sendReady(bus)
        let cpuStart = processCPUSeconds()
        var echoed: UInt64 = 0
        // No flush: publish hands the frame to the bus's I/O thread, which writes it at once.
        for try await message in pings {
            try await bus.publish(BenchTopics.pong, message.payload)
            echoed += 1
        }
        var message = WorkerMessage(event: .result)
        message.ponger = PongerReport(echoed: echoed, cpuSeconds: processCPUSeconds() - cpuStart)
        channel.send(message)
        await bus.close()
    }
}

/// W4's pinger: one ping in flight. Publishes a ping stamped with its sequence number,
/// waits for the pong, records the round trip in an HdrHistogram (after the warm-up).
struct BenchPinger {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    /// A pong missing this long ends the run: the broker loses nothing, so it is a failure.
    static let pongTimeout: UInt64 = 5_000_000_000

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        let pongs = try await bus.subscribe(BenchTopics.pong)
        channel.sendReady(bus)
        await channel.waitForGo()
        // No round trip for pongTimeout ends the pong subscription, so the wait returns nil.
        let watchdog = channel.cancelWhenStalled(pongs, stallNanos: BenchPinger.pongTimeout)
        defer { watchdog.cancel() }

        var iterator = pongs.makeAsyncIterator()
        let report = try await RoundTrips.measure(settings, channel) { payload, sequence in
            try await bus.publish(BenchTopics.ping, payload)
            guard let pong = try await iterator.next() else {
                throw BenchError("no pong for ping \(sequence) within \(BenchPinger.pongTimeout / 1_000_000_000) s")
            }
            return pong.payload
        }
        var message = WorkerMessage(event: .result)
        message.pinger = report
        channel.send(message)
        await bus.close()
    }
}

/// What W4's pinger and W8's requester share: one round trip in flight, `settings.warmup`
/// unmeasured then `settings.messages` measured, each answer checked against what was sent
/// (its stamped sequence) and its time recorded in an HdrHistogram.
enum RoundTrips {
    /// Runs the round trips; `roundTrip` sends `payload` (stamped with `sequence`) and returns the answer's payload.
    static func measure(
        _ settings: BenchWorkerSettings, _ channel: WorkerChannel,
        _ roundTrip: (_ payload: [UInt8], _ sequence: UInt64) async throws -> [UInt8]
    ) async throws -> PingerReport {
        // 1 ns to 60 s at 3 significant digits: 0.1 % resolution at every scale.
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
            let answer = try await roundTrip(payload, sequence)
            let received = monotonicNanos()
            let header = answer.withUnsafeBytes { BenchHeader.read($0) }
            if header?.kind != BenchHeader.ping || header?.sequence != sequence { mismatched += 1 }
            if sequence >= warmup { _ = histogram.record(received - sent) }
            channel.progress.store(sequence + 1, ordering: .relaxed)
        }
        let end = monotonicNanos()
        let cpuSeconds = processCPUSeconds() - cpuStart

        func micros(_ nanos: UInt64) -> Double { Double(nanos) / 1000 }
        let latency = BenchResult.Latency(
            roundTrips: histogram.totalCount, warmup: warmup, mismatched: mismatched, minMicros: micros(histogram.min),
            meanMicros: histogram.mean / 1000, p50Micros: micros(histogram.valueAtPercentile(50)),
            p90Micros: micros(histogram.valueAtPercentile(90)), p99Micros: micros(histogram.valueAtPercentile(99)),
            p999Micros: micros(histogram.valueAtPercentile(99.9)), maxMicros: micros(histogram.maxRecorded),
            roundTripsPerSecond: 0)
        return PingerReport(latency: latency, startNanos: start, endNanos: end, cpuSeconds: cpuSeconds)
    }
}
