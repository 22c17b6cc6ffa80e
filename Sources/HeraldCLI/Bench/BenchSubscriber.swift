import Herald
import Synchronization

/// The subscriber worker: subscribes (the library returns once the broker confirmed, so the
/// subscription is live when `ready` goes out), then counts and checks every message from
/// one task until it has them all, nothing arrived for the idle timeout after the
/// publishers were done, or the broker ended the connection.
///
/// With `--stall-ms` (W6, subscriber 0) it stops reading for that long after its first
/// message: the broker must then drop, disconnect or push back, per the policy.
struct BenchSubscriber {
    let settings: BenchWorkerSettings
    let channel: WorkerChannel

    /// What the consuming task and its watchdog share.
    private final class Shared: Sendable {
        /// The consumer is deliberately not reading (a stall is not idleness).
        let stalled = Atomic<Bool>(false)
        /// The watchdog ended the subscription for idleness.
        let idled = Atomic<Bool>(false)
    }

    func run() async throws {
        let bus = try await Bus.connect(to: settings.address, options: settings.busOptions())
        let subscription = try await bus.subscribe(BenchTopics.data)
        let drops = countDrops(bus)
        channel.sendReady(bus)

        let shared = Shared()
        let watchdog = startWatchdog(subscription, shared)
        let expected = UInt64(settings.publishers) * UInt64(settings.messages)
        var counter = MessageCounter(
            publishers: settings.publishers, perPublisher: UInt64(settings.messages), payloadSize: settings.size)
        var stallDone = settings.stallMilliseconds <= 0
        var cpuStart = 0.0
        var stop = SubscriberStop.idle
        var disconnect: HeraldError?
        do {
            for try await message in subscription {
                counter.count(message)
                channel.progress.store(counter.checker.received, ordering: .relaxed)
                if counter.checker.received == 1 { cpuStart = processCPUSeconds() }
                if counter.checker.unique >= expected {
                    counter.markLast()
                    stop = .complete
                    break
                }
                if !stallDone {
                    stallDone = true
                    shared.stalled.store(true, ordering: .relaxed)
                    try? await Task.sleep(for: .milliseconds(settings.stallMilliseconds))
                    shared.stalled.store(false, ordering: .relaxed)
                }
            }
            if stop != .complete && !shared.idled.load(ordering: .relaxed) {
                // Iteration ended without us: the broker said GOODBYE or closed.
                stop = .disconnected
                disconnect = bus.disconnectReason
            }
        } catch {
            stop = .disconnected
            disconnect = error
        }
        let cpuSeconds = counter.checker.received > 0 ? processCPUSeconds() - cpuStart : 0
        watchdog.cancel()
        await bus.close()
        let (notices, announced) = await drops.value

        let checker = counter.checker
        var message = WorkerMessage(event: .result)
        message.subscriber = SubscriberReport(
            received: checker.received, unique: checker.unique, lost: checker.lost, gapEvents: checker.gapEvents,
            duplicates: checker.duplicates, reordered: checker.reordered, malformed: checker.malformed,
            firstNanos: counter.first, lastNanos: counter.last, cpuSeconds: cpuSeconds,
            delayP50Micros: Double(counter.delays.valueAtPercentile(50)) / 1000,
            delayP99Micros: Double(counter.delays.valueAtPercentile(99)) / 1000,
            delayMaxMicros: Double(counter.delays.maxRecorded) / 1000, dropNotices: notices,
            droppedAnnounced: announced, droppedBefore: counter.droppedBefore, stop: stop,
            disconnectReason: disconnect?.description,
            slowConsumerDisconnect: { if case .slowConsumerDisconnected = disconnect { true } else { false } }())
        channel.send(message)
    }

    /// Counts the broker's drop notices until the connection ends.
    private func countDrops(_ bus: Bus) -> Task<(UInt64, UInt64), Never> {
        let events = bus.events()
        return Task {
            var notices: UInt64 = 0
            var messages: UInt64 = 0
            for await event in events {
                if case .messagesDropped(let count, _) = event {
                    notices += 1
                    messages += count
                }
            }
            return (notices, messages)
        }
    }

    /// Ends the subscription once nothing has arrived for the idle timeout after the parent
    /// said the publishers were done. It watches the progress counter from another task,
    /// so the consuming loop pays nothing for it.
    private func startWatchdog(_ subscription: Subscription, _ shared: Shared) -> Task<Void, Never> {
        let idle = UInt64(max(1, settings.idleMilliseconds)) * 1_000_000
        let channel = self.channel
        return Task {
            var seen: UInt64 = 0
            var lastChange = monotonicNanos()
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(20))
                let now = monotonicNanos()
                let count = channel.progress.load(ordering: .relaxed)
                if count != seen || shared.stalled.load(ordering: .relaxed) {
                    seen = count
                    lastChange = now
                }
                guard let doneAt = channel.publishersDoneAt else { continue }
                if now > max(lastChange, doneAt) + idle {
                    shared.idled.store(true, ordering: .relaxed)
                    await subscription.cancel()
                    return
                }
            }
        }
    }
}
