import Foundation
import Herald
import HeraldProtocol
import Synchronization
import Testing

/// The library across broker restarts, under a service manager that keeps the listening
/// socket (as systemd does): subscriptions resume, publishes buffered meanwhile arrive once
/// and in order, events tell the application, and every policy choice holds.
@Suite("Herald library: reconnect", .serialized, .timeLimit(.minutes(3)))
struct ReconnectIntegrationTests {
    /// Collects a bus's events on a task of its own.
    final class EventLog: Sendable {
        final class Storage: Sendable {
            let events = Mutex<[BusEvent]>([])
        }
        private let storage = Storage()
        private let task: Task<Void, Never>

        init(_ bus: Bus) {
            let stream = bus.events()
            let storage = self.storage
            task = Task { for await event in stream { storage.events.withLock { $0.append(event) } } }
        }

        deinit { task.cancel() }

        var all: [BusEvent] { storage.events.withLock { $0 } }

        /// Waits (bounded) until `count` events satisfy `predicate`.
        func wait(for count: Int = 1, timeout: Double = 15, _ predicate: (BusEvent) -> Bool) async -> Bool {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                if all.filter(predicate).count >= count { return true }
                try? await Task.sleep(for: .milliseconds(5))
            }
            return false
        }
    }

    static func isReconnected(_ event: BusEvent) -> Bool { if case .reconnected = event { true } else { false } }
    static func isReconnecting(_ event: BusEvent) -> Bool { if case .reconnecting = event { true } else { false } }

    /// The bus hands its last will to the new broker after a reconnect: when that broker
    /// later drops the bus without a GOODBYE (here, as a slow consumer), the will is published.
    @Test func theLastWillIsSetAgainAfterAReconnect() async throws {
        let manager = try ServiceManager(purpose: "will-again")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let watcher = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "watcher"))
        let watcherEvents = EventLog(watcher)
        var states = try await watcher.subscribe("svc/state").makeAsyncIterator()
        let service = try await Bus.connect(
            to: manager.address,
            options: BusOptions(
                clientName: "service", slowConsumerPolicy: .disconnect, outputLimit: 64 << 10, subscriptionBufferLimit: 64 << 10,
                lastWill: LastWill(topic: "svc/state", "gone")))
        let serviceEvents = EventLog(service)
        try await service.flush()

        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        let second = try manager.start()
        #expect(await serviceEvents.wait(Self.isReconnected))
        #expect(await watcherEvents.wait(Self.isReconnected))
        try await service.flush()  // the new broker has the will

        // The service stops reading a topic that floods: the broker disconnects it, no GOODBYE.
        let flood = try await service.subscribe("svc/flood")
        let flooder = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "flooder"))
        let chunk = [UInt8](repeating: 7, count: 1024)
        for _ in 0..<4096 { try await flooder.publish("svc/flood", chunk) }
        try await flooder.flush()
        // The will goes out while the broker routes the flood, so before this marker; without
        // it the marker would come first.
        try await flooder.publish("svc/state", "marker")
        try await flooder.flush()
        #expect(try await states.next()?.string == "gone", "the will, set again on the new broker, was published")
        _ = flood
        await flooder.close()
        await watcher.close()
        await service.close()
        #expect(await second.stop() == 0)
    }

    @Test func aSubscriptionResumesAndBufferedPublishesArriveOnceInOrder() async throws {
        let manager = try ServiceManager(purpose: "resume")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let bus = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "survivor"))
        let events = EventLog(bus)
        var messages = try await bus.subscribe("t/#").makeAsyncIterator()
        try await bus.publish("t/a", "before")
        #expect(try await messages.next()?.string == "before")

        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(await events.wait(Self.isReconnecting))
        // Published with no broker: buffered (the default policy) and sent after the reconnect,
        // after the subscription is re-established, so this bus receives its own messages.
        for index in 0..<100 { try await bus.publish("t/b", "buffered-\(index)") }
        let second = try manager.start()
        #expect(await events.wait(Self.isReconnected))
        var received: [Message] = []
        for _ in 0..<100 { if let message = try await messages.next() { received.append(message) } }
        #expect(received.map { $0.string ?? "" } == (0..<100).map { "buffered-\($0)" })
        #expect(received.first?.afterReconnect == true)
        #expect(received.dropFirst().allSatisfy { !$0.afterReconnect })
        // Another client's message reaches the resumed subscription.
        let other = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "other"))
        try await other.publish("t/c", "after")
        try await other.flush()
        #expect(try await messages.next()?.string == "after")
        try await bus.flush()
        guard case .reconnected(let attempt, let downtime)? = events.all.first(where: Self.isReconnected) else {
            Issue.record("no reconnected event")
            return
        }
        // In order: the loss, then the reconnect, nothing else.
        let kinds = events.all.map { event -> String in
            switch event {
            case .reconnecting: "reconnecting"
            case .reconnected: "reconnected"
            default: "other"
            }
        }
        #expect(kinds == ["reconnecting", "reconnected"], "\(events.all)")
        print("reconnect after SIGKILL: attempt \(attempt), downtime \(downtime)")
        await other.close()
        await bus.close()
        #expect(await second.stop() == 0)
    }

    @Test func failPolicyThrowsWhileReconnectingAndReconnectOffEndsTheBus() async throws {
        let manager = try ServiceManager(purpose: "policies")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let failing = try await Bus.connect(
            to: manager.address, options: BusOptions(reconnect: ReconnectPolicy(publishing: .fail)))
        let failingEvents = EventLog(failing)
        let once = try await Bus.connect(to: manager.address, options: BusOptions(reconnect: nil))
        var ending = try await once.subscribe("x").makeAsyncIterator()
        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(await failingEvents.wait(Self.isReconnecting))
        await #expect(throws: HeraldError.self) { try await failing.publish("x", "lost") }
        // Without reconnection the subscription ends with the error, as before.
        await #expect(throws: HeraldError.self) { _ = try await ending.next() }
        #expect(!once.isConnected && !failing.isConnected)
        // close() during a reconnect returns promptly and ends the bus.
        let started = ContinuousClock.now
        await failing.close()
        #expect(started.duration(to: .now) < .seconds(3))
        #expect(await failingEvents.wait { if case .disconnected(nil) = $0 { true } else { false } })
    }

    @Test func aBoundedBufferRefusesPastItsLimit() async throws {
        let manager = try ServiceManager(purpose: "bound")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let bus = try await Bus.connect(
            to: manager.address, options: BusOptions(reconnect: ReconnectPolicy(publishing: .buffer(limit: 4096))))
        let events = EventLog(bus)
        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        #expect(await events.wait(Self.isReconnecting))
        // A flush cannot complete without a broker: bounded, it says so.
        await #expect(throws: HeraldError.timeout) { try await bus.flush(timeout: .milliseconds(200)) }
        let payload = [UInt8](repeating: 1, count: 1000)
        var accepted = 0
        var refusal: HeraldError?
        for _ in 0..<10 {
            do {
                try await bus.publish("x", payload)
                accepted += 1
            } catch {
                refusal = error
                break
            }
        }
        #expect(accepted == 4)
        #expect(refusal?.description.contains("4096 bytes") == true, "\(String(describing: refusal))")
        await bus.close()
    }

    /// The restart soak: four clients keep connecting and publishing while the broker is
    /// killed or stopped 20 times; no connection attempt may fail and the subscriber must
    /// resume every time.
    @Test func restartSoakLosesNoConnectionAttempt() async throws {
        let manager = try ServiceManager(purpose: "soak")
        var current = try manager.start(["--exit-when-idle", "30"])
        #expect(await manager.notify.waitForReady(timeout: 10))
        let subscriber = try await Bus.connect(to: manager.address, options: BusOptions(clientName: "soak-sub"))
        let subscriberEvents = EventLog(subscriber)
        let subscription = try await subscriber.subscribe("soak/#")
        let counters = SoakCounters()
        let consumer = Task { () -> String in
            do {
                for try await _ in subscription { counters.received.add(1, ordering: .relaxed) }
                return "ended"
            } catch {
                return "failed: \(error)"
            }
        }
        let address = manager.address
        let clients = (0..<4).map { index in
            Task {
                while counters.running.load(ordering: .relaxed) {
                    counters.attempts.add(1, ordering: .relaxed)
                    do {
                        let bus = try await Bus.connect(to: address, options: BusOptions(clientName: "soak-\(index)"))
                        try await bus.publish("soak/\(index)", "hello")
                        await bus.close()
                    } catch {
                        counters.failures.withLock { $0.append("\(error)") }
                    }
                }
            }
        }
        var longestWait = Duration.zero
        for restart in 0..<20 {
            try await Task.sleep(for: .milliseconds(60))
            let stoppedAt = ContinuousClock.now
            // Alternately killed and stopped. (An exit when idle cannot happen here: the
            // subscriber is always connected. ActivationIntegrationTests covers clients that
            // connect across an idle exit.)
            let stopping = current
            _ = await stopping.stop(signal: restart % 2 == 0 ? SIGKILL : SIGTERM)
            current = try manager.start(["--exit-when-idle", "30"])
            let readyCount = manager.notify.lines.filter { $0 == "READY=1" }.count
            #expect(await manager.notify.waitFor(timeout: 10) { _ in manager.notify.lines.filter { $0 == "READY=1" }.count > readyCount })
            longestWait = max(longestWait, stoppedAt.duration(to: .now))
        }
        counters.running.store(false, ordering: .relaxed)
        for client in clients { await client.value }
        // The subscriber comes back after the last restart (a restart during a reconnect is
        // covered by the same reconnect, so there may be fewer reconnects than restarts).
        let settled = Date().addingTimeInterval(15)
        while !(subscriber.isConnected && subscriberEvents.all.last.map(Self.isReconnected) == true) && Date() < settled {
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(subscriber.isConnected)
        let reconnects = subscriberEvents.all.filter(Self.isReconnected).count
        let countBefore = counters.received.load(ordering: .relaxed)
        let publisher = try await Bus.connect(to: manager.address)
        try await publisher.publish("soak/final", "last")
        try await publisher.flush()
        let deadline = Date().addingTimeInterval(10)
        while counters.received.load(ordering: .relaxed) == countBefore && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        if counters.received.load(ordering: .relaxed) == countBefore {
            consumer.cancel()
            Issue.record("the subscription did not resume after the last restart (consumer: \(await consumer.value))")
        }
        let failed = counters.failures.withLock { $0 }
        #expect(failed.isEmpty, "\(failed.count) failed: \(failed.prefix(3))")
        print("restart soak: 20 restarts (SIGKILL/SIGTERM), \(counters.attempts.load(ordering: .relaxed)) connection attempts, "
            + "\(failed.count) failed; subscriber reconnected \(reconnects) times and received \(counters.received.load(ordering: .relaxed)) messages; "
            + "longest stop-to-ready \(longestWait)")
        consumer.cancel()
        await publisher.close()
        await subscriber.close()
        let last = current
        _ = await last.stop()
    }
}

/// Shared counters of the restart soak.
final class SoakCounters: Sendable {
    let attempts = Atomic<Int>(0)
    let received = Atomic<Int>(0)
    let running = Atomic<Bool>(true)
    let failures = Mutex<[String]>([])
}
