import Herald

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
        let report = try await RoundTrips.measure(settings, channel) { payload, _ in
            // A lost answer would be a broker bug: the timeout turns it into a failed run.
            try await bus.request(BenchTopics.request, payload, timeout: .seconds(5)).payload
        }
        var message = WorkerMessage(event: .result)
        message.pinger = report
        channel.send(message)
        await bus.close()
    }
}
