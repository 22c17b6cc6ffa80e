import Foundation
import Herald
import Testing

/// `herald sub` and `herald pub` across broker restarts, under a service manager that keeps
/// the listening socket.
@Suite("herald CLI: broker restarts", .timeLimit(.minutes(2)))
struct CLIReconnectTests {
    @Test func subKeepsPrintingAcrossARestartAndSaysSo() async throws {
        let manager = try ServiceManager(purpose: "cli-sub")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let subscriber = try await CLIIntegrationTests.startSubscriber(address: manager.address, ["power/#"])
        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        let second = try manager.start()
        // The note on stderr is the subscriber's readiness signal after the restart.
        let deadline = Date().addingTimeInterval(15)
        while !subscriber.standardError.contains("reconnected") && Date() < deadline { try await Task.sleep(for: .milliseconds(5)) }
        #expect(subscriber.standardError.contains("lost the broker"), "\(subscriber.standardError)")
        #expect(subscriber.standardError.contains("reconnected after"), "\(subscriber.standardError)")
        let address = manager.address
        let (status, _, errors) = try await CLIProcess.run(["pub", "--address", address, "power/battery", "42"])
        #expect(status == 0, "\(errors)")
        #expect(await subscriber.waitForLine { $0.hasPrefix("power/battery 42") } != nil, "\(subscriber.standardOutput)")
        subscriber.process.interrupt()
        #expect(await subscriber.waitForExit() == 0)
        #expect(await second.stop() == 0)
    }

    @Test func pubWaitsForABrokerThatIsStarting() async throws {
        let address = TestEnvironment.uniqueAddress("cli-pub-wait")
        let publisher = try CLIProcess(["pub", "--address", address, "--wait", "20", "power/battery", "7"])
        publisher.write("", close: true)
        // Nothing listens yet; the broker starts a moment later.
        try await Task.sleep(for: .milliseconds(300))
        #expect(publisher.process.isRunning, "pub gave up before the broker started: \(publisher.standardError)")
        let broker = try await BrokerProcess(addressFromEnvironment: false, exactAddress: address)
        #expect(await publisher.waitForExit() == 0, "\(publisher.standardError)")
        #expect(broker.log.contains("peer connected"))
    }
}
