import ArgumentParser
import Herald

/// `herald bench-worker`: one client process of `herald bench`, which starts it (hidden).
///
/// It reads JSON commands on stdin and writes JSON reports on stdout, one per line (see
/// ``ParentMessage`` and ``WorkerMessage``), and uses the Herald library from one task.
struct BenchWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-worker",
        abstract: "One client process of 'herald bench' (started by it, not by hand).",
        shouldDisplay: false)

    /// What a worker does.
    enum Role: String, ExpressibleByArgument, Codable, Sendable, CaseIterable {
        case publisher, subscriber, pinger, ponger, requester, responder, library, flooder
    }

    @Option(help: "publisher, subscriber, pinger, ponger, requester, responder, library or flooder.")
    var role: Role

    @Option(help: "Publisher or subscriber index (publishers stamp it into every message).")
    var index = 0

    @Option(help: "Broker address.")
    var address: String

    @Option(help: "Messages per publisher (W4: measured round trips).")
    var messages: Int

    @Option(help: "Number of publishers (what a subscriber expects).")
    var publishers = 1

    @Option(help: "Payload bytes.")
    var size = 64

    @Option(name: .customLong("slow-consumer"), help: "Slow-consumer policy the worker asks for.")
    var slowConsumer: SubCommand.Policy = .backpressure

    @Option(name: .customLong("stall-ms"), help: "Subscriber: stop reading this long after the first message.")
    var stallMilliseconds = 0

    @Option(name: .customLong("idle-ms"), help: "Subscriber: stop when nothing arrived this long after the publishers were done.")
    var idleMilliseconds = 2000

    @Option(help: "Pinger: unmeasured round trips first.")
    var warmup = 1000

    @Flag(help: "Publisher: send every payload as a sealed memfd (W9).")
    var sealed = false

    func validate() throws {
        guard messages >= 1 else { throw ValidationError("--messages must be at least 1") }
        guard size >= BenchHeader.size else { throw ValidationError("--size must be at least \(BenchHeader.size)") }
        guard (1...255).contains(publishers), index >= 0 else { throw ValidationError("bad --publishers or --index") }
    }

    func run() async throws {
        let channel = WorkerChannel.start()
        let settings = BenchWorkerSettings(
            role: role, index: index, address: address, messages: messages, publishers: publishers, size: size,
            policy: slowConsumer.policy, stallMilliseconds: stallMilliseconds, idleMilliseconds: idleMilliseconds,
            warmup: warmup, sealed: sealed)
        let progress = channel.reportProgress()
        defer { progress.cancel() }
        do {
            switch role {
            case .publisher: try await BenchPublisher(settings: settings, channel: channel).run()
            case .subscriber: try await BenchSubscriber(settings: settings, channel: channel).run()
            case .pinger: try await BenchPinger(settings: settings, channel: channel).run()
            case .ponger: try await BenchPonger(settings: settings, channel: channel).run()
            case .requester: try await BenchRequester(settings: settings, channel: channel).run()
            case .responder: try await BenchResponder(settings: settings, channel: channel).run()
            case .library: try await BenchLibrary(settings: settings, channel: channel).run()
            case .flooder: try await BenchFlooder(settings: settings, channel: channel).run()
            }
        } catch let error as HeraldError {
            channel.fail(error.description)
            throw ExitCode(Failure.status(for: error))
        } catch {
            channel.fail("\(error)")
            throw ExitCode(1)
        }
    }
}

/// A worker's parameters.
struct BenchWorkerSettings: Sendable {
    var role: BenchWorkerCommand.Role
    var index: Int
    var address: String
    var messages: Int
    var publishers: Int
    var size: Int
    var policy: SlowConsumerPolicy
    var stallMilliseconds: Int
    var idleMilliseconds: Int
    var warmup: Int
    /// Publisher: every payload as a sealed memfd (W9).
    var sealed = false

    /// Bus options for this worker: its name in the broker's logs, and its policy.
    func busOptions() -> BusOptions {
        BusOptions(clientName: "bench-\(role.rawValue)-\(index)", slowConsumerPolicy: policy)
    }
}

/// A failure of a bench worker that is not a ``HeraldError``.
struct BenchError: Error, CustomStringConvertible {
    var description: String

    init(_ description: String) {
        self.description = description
    }
}

extension WorkerChannel {
    /// Reports `ready` with what the broker said about itself.
    func sendReady(_ bus: Bus) {
        var message = WorkerMessage(event: .ready)
        message.brokerPID = bus.broker.pid
        message.serverName = bus.broker.serverName
        send(message)
    }
}
