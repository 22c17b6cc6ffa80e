import Foundation
import HeraldProtocol
import Testing

/// heraldd under a service manager, speaking systemd's protocols: socket activation through
/// libsystemd, readiness and status, the watchdog, reload, exit when idle, and clients that
/// wait in the manager's backlog while no broker runs.
@Suite("heraldd: systemd activation", .timeLimit(.minutes(2)))
struct ActivationIntegrationTests {
    @Test func systemdSocketActivateStartsTheBrokerOnTheFirstConnect() throws {
        let notify = try NotifySocket()
        let address = TestEnvironment.uniqueAddress("socket-activate")
        let activator = Process()
        activator.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-socket-activate")
        // systemd-socket-activate passes only the variables named with -E to the broker.
        activator.arguments = ["-l", address, "--fdname=herald", "-E", "NOTIFY_SOCKET=\(notify.address)",
            TestEnvironment.heralddPath, "--exit-when-idle", "30"]
        let log = Pipe()
        activator.standardError = log
        activator.standardOutput = FileHandle.nullDevice
        try activator.run()
        defer {
            // systemd-socket-activate ignores SIGTERM while it waits; heraldd, once exec'ed, does not.
            if activator.isRunning { kill(activator.processIdentifier, SIGKILL) }
            activator.waitUntilExit()
        }
        // Its readiness signal: "Listening on <address> as 3." on standard error.
        var said = ""
        while !said.contains("Listening on") {
            let chunk = log.fileHandleForReading.availableData
            guard !chunk.isEmpty else { throw RawConnectionError.unexpected("systemd-socket-activate ended: \(said)") }
            said += String(decoding: chunk, as: UTF8.self)
        }
        // No broker yet: the first connect starts it (and must not be lost meanwhile).
        let (subscriber, welcome) = try RawConnection.handshake(address, name: "first")
        #expect(welcome.serverName.hasPrefix("heraldd"))
        #expect(notify.waitForReady(timeout: 10))
        try subscriber.subscribe("power/#", id: 1)
        let (publisher, _) = try RawConnection.handshake(address, name: "second")
        publisher.send(.publish(Publish(topic: "power/battery", payload: Array("87".utf8))))
        try publisher.sync()
        #expect(try subscriber.readFrame()?.messagePayload == Array("87".utf8))
        #expect(notify.waitFor(timeout: 5) { $0.contains("STATUS=") && $0.contains("peers") }, "\(notify.received)")
        activator.terminate()
        activator.waitUntilExit()
        #expect(activator.terminationStatus == 0)
    }

    @Test func waitingClientsAreServedByTheNextInstanceAfterAKill() throws {
        let manager = try ServiceManager(purpose: "restart")
        let first = try manager.start()
        #expect(manager.notify.waitForReady(timeout: 10))
        let (early, _) = try RawConnection.handshake(manager.address, name: "early")
        try early.sync()
        #expect(first.stop(signal: SIGKILL) == 128 + SIGKILL)
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
        #expect(second.stop() == 0)
        #expect(second.log.contains("passed by the service manager"))
    }

    @Test func exitWhenIdleNotifiesStoppingAndTheNextInstanceServesLaterClients() throws {
        let manager = try ServiceManager(purpose: "idle")
        let first = try manager.start(["--exit-when-idle", "0.5"])
        #expect(manager.notify.waitForReady(timeout: 10))
        let (client, _) = try RawConnection.handshake(manager.address, name: "brief")
        client.send(.goodbye(Goodbye(reason: 0, message: "")))
        _ = try client.readUntilClosed()
        #expect(first.waitForExit(timeout: 10) == 0)
        #expect(manager.notify.waitFor(timeout: 5) { $0.contains("STOPPING=1") })
        #expect(first.log.contains("no peers for 0.5"))
        let late = try RawConnection(manager.address)
        late.send(.hello(Hello(clientName: "late")))
        let second = try manager.start(["--exit-when-idle", "30"])
        guard case .welcome = try late.readFrame(timeout: 10) else { throw RawConnectionError.unexpected("the next instance did not serve the waiting client") }
        #expect(second.stop() == 0)
    }

    @Test func watchdogPingsComeFromTheLoopAtHalfTheTimeout() throws {
        let manager = try ServiceManager(purpose: "watchdog")
        let instance = try manager.start([], environment: ["WATCHDOG_USEC": "200000"])
        #expect(manager.notify.waitForReady(timeout: 10))
        let before = manager.notify.lines.filter { $0 == "WATCHDOG=1" }.count
        manager.notify.collect(for: 1.0)
        let pings = manager.notify.lines.filter { $0 == "WATCHDOG=1" }.count - before
        // One every ~100 ms: at least 6 in a second even on a loaded machine, and not a flood.
        #expect(pings >= 6 && pings <= 15, "\(pings) watchdog pings in 1 s")
        #expect(instance.stop() == 0)
    }

    @Test func sighupIsAnnouncedAsAReload() throws {
        let manager = try ServiceManager(purpose: "reload")
        let instance = try manager.start()
        #expect(manager.notify.waitForReady(timeout: 10))
        let readyCount = manager.notify.lines.filter { $0 == "READY=1" }.count
        kill(instance.pid, SIGHUP)
        #expect(manager.notify.waitFor(timeout: 5) { $0.contains("RELOADING=1") && $0.contains("MONOTONIC_USEC=") })
        #expect(manager.notify.waitFor(timeout: 5) { _ in manager.notify.lines.filter { $0 == "READY=1" }.count > readyCount })
        let lines = manager.notify.lines
        let reloading = try #require(lines.firstIndex(of: "RELOADING=1"))
        #expect(lines[reloading...].contains("READY=1"))
        _ = try RawConnection.handshake(manager.address, name: "after-reload")
        #expect(instance.stop() == 0)
    }

    @Test func aPassedDescriptorThatIsNotAListeningSocketIsRefused() throws {
        let manager = try ServiceManager(purpose: "wrong-fd")
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("herald-not-a-socket-\(getpid())").path
        #expect(FileManager.default.createFile(atPath: path, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = open(path, O_RDONLY | O_CLOEXEC)
        defer { close(file) }
        let instance = try manager.start(passing: file)
        #expect(instance.waitForExit(timeout: 10) == 1)
        #expect(instance.log.contains("descriptor 3 (herald)") && instance.log.contains("a regular file"), "\(instance.log)")
    }
}
