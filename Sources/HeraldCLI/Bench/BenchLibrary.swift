import Herald

/// Workload L1: the client library's own speed, with the broker taken out.
///
/// One worker runs a ``LoopbackBroker`` (a thread that answers the protocol and otherwise only
/// reads or writes pre-encoded frames) and measures, from one task each:
/// - publish: N publishes of `--size` bytes into the library, then a flush (the loopback
///   counts and sequence-checks every PUBLISH it reads);
/// - receive: N messages written by the loopback as fast as the socket takes them, counted
///   and checked with the same per-message work as the W1–W6 subscribers.
struct BenchLibrary {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    func run() async throws {
        let messages = UInt64(settings.messages)
        let loopback = try LoopbackBroker(messages: messages, payloadSize: settings.size)
        loopback.start()
        channel.send(WorkerMessage(event: .ready))
        await channel.waitForGo()

        // Publish side.
        let publisher = try await Bus.connect(to: loopback.address, options: settings.busOptions())
        var payload = BenchHeader.makePayload(size: settings.size, kind: BenchHeader.data, publisher: 0)
        let topic = BenchTopics.data
        let publishLoopbackCPUStart = await loopbackCPUAfterFlush(publisher, loopback)
        let publishCPUStart = processCPUSeconds()
        let publishStart = monotonicNanos()
        var sequence: UInt64 = 0
        try await channel.publishStamped(messages, on: publisher, topic: topic, payload: &payload, sequence: &sequence)
        let publishCallsEnd = monotonicNanos()
        try await publisher.flush()
        let publishEnd = monotonicNanos()
        let publishCPU = processCPUSeconds() - publishCPUStart
        let publishLoopbackCPU = Double(loopback.cpuAtLastPong.load(ordering: .acquiring) - publishLoopbackCPUStart) / 1e9
        await publisher.close()

        // Receive side.
        let subscriber = try await Bus.connect(to: loopback.address, options: settings.busOptions())
        let subscription = try await subscriber.subscribe(BenchTopics.data)
        // Nothing for 5 s means the run failed (the loopback loses nothing): end the wait.
        let watchdog = channel.cancelWhenStalled(subscription, stallNanos: 5_000_000_000)
        var counter = MessageCounter(publishers: 1, perPublisher: messages, payloadSize: settings.size)
        let receiveCPUStart = processCPUSeconds()
        try await subscriber.publish(BenchTopics.start, [UInt8]())
        for try await message in subscription {
            counter.count(message)
            channel.progress.store(messages + counter.checker.received, ordering: .relaxed)
            if counter.checker.unique >= messages {
                counter.markLast()
                break
            }
        }
        let receiveCPU = processCPUSeconds() - receiveCPUStart
        watchdog.cancel()
        // The loopback records its CPU right after its last write; the last message can be
        // handed out a moment before that.
        for _ in 0..<100 where !loopback.sendFinished.load(ordering: .acquiring) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        await subscriber.close()

        let checker = counter.checker
        var message = WorkerMessage(event: .result)
        message.library = LibraryReport(
            messages: messages, payloadBytes: settings.size,
            publishCallSeconds: secondsBetween(publishStart, publishCallsEnd),
            publishTotalSeconds: secondsBetween(publishStart, publishEnd), publishCPUSeconds: publishCPU,
            publishLoopbackCPUSeconds: publishLoopbackCPU,
            publishArrived: loopback.publishArrived.load(ordering: .relaxed),
            publishOutOfOrder: loopback.publishOutOfOrder.load(ordering: .relaxed),
            receiveSeconds: secondsBetween(counter.first, counter.last), receiveCPUSeconds: receiveCPU,
            receiveLoopbackCPUSeconds: Double(loopback.sendCPUNanos.load(ordering: .relaxed)) / 1e9,
            receiveUnique: checker.unique, receiveLost: checker.lost, receiveDuplicates: checker.duplicates,
            receiveReordered: checker.reordered)
        channel.send(message)
    }

    /// Flushes once before measuring, so the loopback's CPU reading is taken right at the start.
    private func loopbackCPUAfterFlush(_ bus: Bus, _ loopback: LoopbackBroker) async -> UInt64 {
        try? await bus.flush()
        return loopback.cpuAtLastPong.load(ordering: .acquiring)
    }
}
