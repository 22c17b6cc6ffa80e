import Foundation
import HeraldProtocol
import Testing

/// heraldd under a service manager, speaking systemd's protocols: socket activation through
/// libsystemd, readiness and status, the watchdog, reload, exit when idle, and clients that
/// wait in the manager's backlog while no broker runs.
@Suite("heraldd: systemd activation", .timeLimit(.minutes(2)))
struct ActivationIntegrationTests {
    @Test func systemdSocketActivateStartsTheBrokerOnTheFirstConnect() async throws {
        let notify = try NotifySocket()
        let address = TestEnvironment.uniqueAddress("socket-activate")
        // Spawned, not a Foundation Process: it closes the descriptors it does not pass, which
        // would leave Foundation blocked in wait4 for it (see SpawnedProcess).
        // systemd-socket-activate passes only the variables named with -E to the broker.
        let activator = try SpawnedProcess(
            "/usr/bin/systemd-socket-activate",
            ["-l", address, "--fdname=herald", "-E", "NOTIFY_SOCKET=\(notify.address)", TestEnvironment.heralddPath, "--exit-when-idle", "30"])
        // Its readiness signal: "Listening on <address> as 3." on standard error.
        #expect(await activator.waitForLog { $0.contains("Listening on") }, "\(activator.log)")
        // No broker yet: the first connect starts it (and must not be lost meanwhile).
        let (subscriber, welcome) = try RawConnection.handshake(address, name: "first")
        #expect(welcome.serverName.hasPrefix("heraldd"))
        #expect(await notify.waitForReady(timeout: 10))
        try subscriber.subscribe("power/#", id: 1)
        let (publisher, _) = try RawConnection.handshake(address, name: "second")
        publisher.send(.publish(Publish(topic: "power/battery", payload: Array("87".utf8))))
        try publisher.sync()
        #expect(try subscriber.readFrame()?.messagePayload == Array("87".utf8))
        #expect(await notify.waitFor(timeout: 5) { $0.contains("STATUS=") && $0.contains("peers") }, "\(notify.received)")
        // heraldd, exec'ed by the activator in its place, exits 0 on SIGTERM.
        #expect(await activator.stop() == 0, "\(activator.log)")
    }

    @Test func waitingClientsAreServedByTheNextInstanceAfterAKill() async throws {
        let manager = try ServiceManager(purpose: "restart")
        let first = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let (early, _) = try RawConnection.handshake(manager.address, name: "early")
        try early.sync()
        #expect(await first.stop(signal: SIGKILL) == 128 + SIGKILL)
        // No broker runs now; the manager's socket still listens, so these connect and wait.
        let waiting = try (0..<8).map { index -> RawConnection in
            let connection = try RawConnection(manager.address)
            connection.send(.hello(Hello(clientName: "waiting-\(index)")))
            return connection
        }
        let restartedAt = Date()
        let second = try manager.start()
        var served = 0
        for connection in waiting {
            if case .welcome = try connection.readFrame(timeout: 10) { served += 1 }
        }
        #expect(served == waiting.count)
        print("restart after SIGKILL: \(served) of \(waiting.count) waiting clients served, "
            + "\(String(format: "%.1f", Date().timeIntervalSince(restartedAt) * 1000)) ms after the next instance was started")
        let secondStatus = await second.stop()
        #expect(secondStatus == 0, "\(second.log)")
        #expect(second.log.contains("passed by the service manager"))
    }

    @Test func exitWhenIdleNotifiesStoppingAndTheNextInstanceServesLaterClients() async throws {
        let manager = try ServiceManager(purpose: "idle")
        // The client waits in the manager's backlog before the broker starts: a broker that
        // is idle for half a second exits, and a busy machine may take that long to connect.
        let client = try RawConnection(manager.address)
        client.send(.hello(Hello(clientName: "brief")))
        let first = try manager.start(["--exit-when-idle", "0.5"])
        guard case .welcome = try client.readFrame(timeout: 10) else { throw RawConnectionError.unexpected("the first instance did not serve the waiting client") }
        #expect(await manager.notify.waitForReady(timeout: 10))
        client.send(.goodbye(Goodbye(reason: 0, message: "")))
        _ = try client.readUntilClosed()
        #expect(await first.waitForExit(timeout: 10) == 0)
        #expect(await manager.notify.waitFor(timeout: 5) { $0.contains("STOPPING=1") })
        #expect(first.log.contains("no peers for 0.5"))
        let late = try RawConnection(manager.address)
        late.send(.hello(Hello(clientName: "late")))
        let second = try manager.start(["--exit-when-idle", "30"])
        guard case .welcome = try late.readFrame(timeout: 10) else { throw RawConnectionError.unexpected("the next instance did not serve the waiting client") }
        let secondStatus = await second.stop()
        #expect(secondStatus == 0, "\(second.log)")
    }

    @Test func watchdogPingsComeFromTheLoopAtHalfTheTimeout() async throws {
        let manager = try ServiceManager(purpose: "watchdog")
        let instance = try manager.start([], environment: ["WATCHDOG_USEC": "200000"])
        #expect(await manager.notify.waitForReady(timeout: 10))
        let before = manager.notify.lines.filter { $0 == "WATCHDOG=1" }.count
        let start = Date()
        try await Task.sleep(for: .seconds(1))
        let pings = manager.notify.lines.filter { $0 == "WATCHDOG=1" }.count - before
        let seconds = Date().timeIntervalSince(start)
        // One every ~100 ms: at least 6 a second even on a loaded machine, and not a flood.
        #expect(Double(pings) >= 6 * seconds && Double(pings) <= 15 * seconds, "\(pings) watchdog pings in \(seconds) s")
        let instanceStatus = await instance.stop()
        #expect(instanceStatus == 0, "\(instance.log)")
    }

    @Test func sighupIsAnnouncedAsAReload() async throws {
        let manager = try ServiceManager(purpose: "reload")
        let instance = try manager.start()
        #expect(await manager.notify.waitForReady(timeout: 10))
        let readyCount = manager.notify.lines.filter { $0 == "READY=1" }.count
        kill(instance.pid, SIGHUP)
        #expect(await manager.notify.waitFor(timeout: 5) { $0.contains("RELOADING=1") && $0.contains("MONOTONIC_USEC=") })
        #expect(await manager.notify.waitFor(timeout: 5) { _ in manager.notify.lines.filter { $0 == "READY=1" }.count > readyCount })
        let lines = manager.notify.lines
        let reloading = try #require(lines.firstIndex(of: "RELOADING=1"))
        #expect(lines[reloading...].contains("READY=1"))
        _ = try RawConnection.handshake(manager.address, name: "after-reload")
        let instanceStatus = await instance.stop()
        #expect(instanceStatus == 0, "\(instance.log)")
    }

    @Test func aPassedDescriptorThatIsNotAListeningSocketIsRefused() async throws {
        let manager = try ServiceManager(purpose: "wrong-fd")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-not-a-socket-\(getpid())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        let instance = try manager.start(passing: file)
        #expect(await instance.waitForExit(timeout: 10) == 1)
        #expect(instance.log.contains("descriptor 3 (herald)") && instance.log.contains("a regular file"), "\(instance.log)")
    }
}
