import Foundation
import HeraldProtocol
import Testing

/// Hostile local users against a real heraldd (PROTOCOL.md §5.2, §5.5, §5.6): nobody can
/// freeze it, pin its descriptors or grow its memory past its configured bounds, and a
/// bystander keeps routing throughout. Each test prints the figures it measured.
@Suite("heraldd: hostile clients", .serialized, .timeLimit(.minutes(3)))
struct HostileClientIntegrationTests {
    /// The descriptor limit the brokers here run under (soft and hard), as a low-limit service would.
    static let descriptorLimit = 256
    /// Longest a bystander's PING may take while the broker is under attack. Typical round
    /// trips are well under a millisecond; the bound only says "never frozen".
    static let pingBound = 1.0

    @Test(.enabled(if: getuid() == 0, "needs root to run the flood as another user"))
    func connectionsFromAnUnadmittedUserCostNothing() async throws {
        let broker = try await BrokerProcess(descriptorLimit: Self.descriptorLimit)
        // A quarter of what the reserve leaves is kept for passed descriptors, the rest is connections'.
        let available = Self.descriptorLimit - 64
        #expect(broker.log.contains("max_connections=\((available - available / 4) / 2)"), "\(broker.log)")
        let bystander = try Bystander(broker.address)
        _ = try bystander.roundTrip()
        let baseline = ProcessInspector.openFileDescriptors(broker.pid)

        let flood = try ConnectionFlood(address: broker.address, hold: 2 * Self.descriptorLimit, churnSeconds: 3, asNobody: true)
        defer { flood.release() }
        let held = try await flood.waitUntilHeld()
        #expect(held.connections == 2 * Self.descriptorLimit)
        // Every refused connection was closed at once: the broker holds none of them.
        #expect(ProcessInspector.openFileDescriptors(broker.pid) <= baseline + 2)
        let latencies = try bystander.keepChecking(for: 2)
        let churn = try await flood.waitUntilChurned()
        #expect(ProcessInspector.openFileDescriptors(broker.pid) <= baseline + 2)
        #expect(latencies.max() ?? .infinity < Self.pingBound)
        // The log says so, without a line per refusal.
        let refusalLines = broker.log.split(separator: "\n").filter { $0.contains("refused connection: not authorized") }
        #expect(!refusalLines.isEmpty && refusalLines.count <= 8, "\(refusalLines.count) refusal lines")
        _ = try RawConnection.handshake(broker.address, name: "after-the-flood")
        print("unadmitted flood: held \(held.connections) refused connections, broker fds \(baseline) before and during;",
            "churn \(churn.connections) attempts in \(churn.seconds) s (\(Int(Double(churn.connections) / churn.seconds))/s absorbed);",
            "bystander PING p50 \(ms(latencies.percentile(0.5))) p99 \(ms(latencies.percentile(0.99))) max \(ms(latencies.max()!)) over \(latencies.count)")
    }

    /// One admitted user floods past its per-uid caps, first with connections that never say
    /// HELLO (the handshake cap), then with connections that complete it (the connection
    /// cap); meanwhile another user connects and routes as usual.
    @Test(.enabled(if: getuid() == 0, "needs root to run the flood as another user"))
    func oneUsersConnectionFloodLeavesRoomForOtherUsers() async throws {
        let connectionsPerUID = 32
        let handshakingPerUID = 8
        let broker = try await BrokerProcess([
            "--allow-uid", "65534", "--max-connections-per-uid", "\(connectionsPerUID)",
            "--max-handshaking-per-uid", "\(handshakingPerUID)",
        ])
        let bystander = try Bystander(broker.address)

        // Silent connections: only `handshakingPerUID` of them are kept, the rest refused at once.
        let silent = try ConnectionFlood(address: broker.address, hold: 4 * handshakingPerUID, churnSeconds: 2, asNobody: true)
        defer { silent.release() }
        _ = try await silent.waitUntilHeld()
        let duringSilent = try connectAndRoute(broker.address, bystander, times: 40)
        _ = try await silent.waitUntilChurned()
        #expect(broker.log.contains("uid 65534 already has its maximum of \(handshakingPerUID) connections that have not completed the handshake"))
        await silent.end()

        // Completed handshakes: the uid gets exactly its cap; every further HELLO is refused.
        let admitted = try ConnectionFlood(
            address: broker.address, hold: 2 * connectionsPerUID, churnSeconds: 2, asNobody: true, hello: true)
        defer { admitted.release() }
        let held = try await admitted.waitUntilHeld()
        // Exactly the cap is welcomed; the rest are refused (or, on a loaded machine, a few
        // time out connecting behind the refusals).
        #expect(held.welcomed == connectionsPerUID && held.refused > 0 && held.welcomed + held.failed == 2 * connectionsPerUID, "\(held)")
        let duringAdmitted = try connectAndRoute(broker.address, bystander, times: 40)
        let churn = try await admitted.waitUntilChurned()
        #expect(churn.welcomed == 0 && churn.refused > 0, "\(churn)")
        #expect(broker.log.contains("uid 65534 already has its maximum of \(connectionsPerUID) connections open"))

        // uid 0 was never refused and never waited on the flood (the bound only says "not frozen").
        let all = duringSilent + duringAdmitted
        #expect(all.max() ?? .infinity < Self.pingBound)
        print("per-uid connection flood: uid 0 connect+handshake p50 \(ms(duringSilent.percentile(0.5))) max \(ms(duringSilent.max()!))",
            "beside \(4 * handshakingPerUID) silent connections (cap \(handshakingPerUID));",
            "p50 \(ms(duringAdmitted.percentile(0.5))) max \(ms(duringAdmitted.max()!)) beside \(held.welcomed) welcomed",
            "(cap \(connectionsPerUID)) and \(churn.refused) refused in \(churn.seconds) s of churn")
    }

    /// Connects `times` times as this process's user, timing connect + HELLO → WELCOME, and
    /// routes one message through `bystander` after each.
    private func connectAndRoute(_ address: String, _ bystander: Bystander, times: Int) throws -> [Double] {
        var seconds: [Double] = []
        for index in 0..<times {
            let start = DispatchTime.now().uptimeNanoseconds
            let (connection, _) = try RawConnection.handshake(address, name: "other-user-\(index)")
            seconds.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            connection.closeNow()
            _ = try bystander.roundTrip()
        }
        return seconds
    }

    @Test func descriptorExhaustionKeepsServingAndRecovers() async throws {
        let broker = try await BrokerProcess(descriptorLimit: Self.descriptorLimit)
        let bystander = try Bystander(broker.address)
        _ = try bystander.roundTrip()
        let baseline = ProcessInspector.openFileDescriptors(broker.pid)
        // Leave the broker 16 descriptors, below what its connection limit assumes: accept
        // meets EMFILE for real.
        try Self.setDescriptorLimit(of: broker.pid, to: baseline + 16)

        let flood = try ConnectionFlood(address: broker.address, hold: 2 * Self.descriptorLimit, churnSeconds: 3, asNobody: false)
        defer { flood.release() }
        let held = try await flood.waitUntilHeld()
        let latencies = try bystander.keepChecking(for: 2)
        #expect(latencies.max() ?? .infinity < Self.pingBound)
        // A new client is answered, not left hanging: refused with a reason while descriptors are out.
        let refused = try RawConnection(broker.address)
        refused.send(.hello(Hello(clientName: "during")))
        let answer = try refused.readFrame(timeout: 5)
        #expect(answer?.errorBody?.knownCode == .tooManyConnections, "\(String(describing: answer))")
        let churn = try await flood.waitUntilChurned()
        #expect(broker.log.contains("out of file descriptors"))

        // Recovery: the flood ends and a new client is welcomed without any restart.
        let ended = Date()
        await flood.end()
        var recovered: Double?
        while recovered == nil && Date().timeIntervalSince(ended) < 15 {
            if let (_, _) = try? RawConnection.handshake(broker.address, name: "after") {
                recovered = Date().timeIntervalSince(ended)
            } else {
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        let recovery = try #require(recovered, "no WELCOME within 15 s of the flood ending")
        #expect(broker.log.contains("accepting connections again"))
        _ = try bystander.roundTrip()
        let after = ProcessInspector.openFileDescriptors(broker.pid)
        #expect(after <= baseline + 1, "fds \(after), baseline \(baseline)")
        print("descriptor exhaustion: flood held \(held.connections) (\(held.failed) failed), churned \(churn.connections) attempts in",
            "\(churn.seconds) s; bystander PING p50 \(ms(latencies.percentile(0.5))) max \(ms(latencies.max()!)) over \(latencies.count);",
            "recovered \(ms(recovery)) after the flood ended; fds \(baseline) before, \(after) after;",
            "broker CPU \(ProcessInspector.cpuSeconds(broker.pid)) s in all")
    }

    @Test func sigtermStopsABrokerThatIsOutOfDescriptors() async throws {
        let broker = try await BrokerProcess(descriptorLimit: Self.descriptorLimit)
        let baseline = ProcessInspector.openFileDescriptors(broker.pid)
        try Self.setDescriptorLimit(of: broker.pid, to: baseline + 8)
        let flood = try ConnectionFlood(address: broker.address, hold: 2 * Self.descriptorLimit, churnSeconds: 1, asNobody: false)
        defer { flood.release() }
        _ = try await flood.waitUntilHeld()
        let start = Date()
        let status = await broker.stop(signal: SIGTERM, timeout: 10)
        #expect(status == 0)
        print("SIGTERM while out of descriptors: exited \(String(describing: status)) after \(ms(Date().timeIntervalSince(start)))")
    }

    @Test func partialFramesAreBoundedInMemoryAndTime() async throws {
        let budget = 8 << 20
        let broker = try await BrokerProcess(["--partial-input-budget", "\(budget)", "--frame-timeout", "2"])
        let bystander = try Bystander(broker.address)
        _ = try bystander.roundTrip()
        let baselineRSS = ProcessInspector.residentBytes(broker.pid)
        // 50 connections, each with a maximum-size PUBLISH missing its last 8 bytes.
        let frame = FrameEncoder.encode(.publish(Publish(topic: "big", payload: [UInt8](repeating: 9, count: (1 << 20) - 8 - 3))))
        #expect(frame.count == 1 << 20)
        let started = Date()
        var attackers: [RawConnection] = []
        for index in 0..<50 {
            let (connection, _) = try RawConnection.handshake(broker.address, name: "partial-\(index)")
            _ = connection.send(Array(frame.dropLast(8)))
            attackers.append(connection)
        }
        try bystander.publisher.sync()
        let peakRSS = ProcessInspector.residentBytes(broker.pid)
        #expect(peakRSS - baselineRSS < budget + (8 << 20), "RSS grew by \(peakRSS - baselineRSS) bytes")
        let latencies = try bystander.keepChecking(for: 0.5)

        var codes: [ErrorCode: Int] = [:]
        var lastError = Date()
        for connection in attackers {
            let frames = try connection.readUntilClosed(timeout: 10)
            let code = try #require(frames.last?.errorBody?.knownCode, "no ERROR before the close: \(frames)")
            codes[code, default: 0] += 1
            lastError = max(lastError, Date())
        }
        #expect(Set(codes.keys) == [.inputBudgetExceeded, .frameTimeout], "\(codes)")
        #expect(codes[.frameTimeout, default: 0] <= budget / (1 << 20))
        // Everything was settled within the frame timeout and one sweep (plus margin).
        #expect(lastError.timeIntervalSince(started) < 2 + 1 + 3)
        _ = try bystander.roundTrip()
        #expect(broker.log.contains("frame_timeout") || broker.log.contains("frame timeout"))
        print("partial frames: 50 × 1 MiB − 8 B; RSS \(baselineRSS >> 10) KiB before, peak \(peakRSS >> 10) KiB (budget \(budget >> 10) KiB);",
            "\(codes[.inputBudgetExceeded, default: 0]) input_budget_exceeded, \(codes[.frameTimeout, default: 0]) frame_timeout,",
            "all closed \(ms(lastError.timeIntervalSince(started))) after the first byte; bystander PING max \(ms(latencies.max()!))")
    }

    @Test func aPeerThatDoesNotReadItsRepliesIsToldWhy() async throws {
        let broker = try await BrokerProcess()
        let bystander = try Bystander(broker.address)
        let connection = try RawConnection(broker.address)
        connection.shrinkReceiveBuffer()
        connection.send(.hello(Hello(outputLimit: 4096, clientName: "deaf")))
        guard case .welcome = try connection.readFrame() else { throw RawConnectionError.unexpected("no WELCOME") }
        // 40,000 PINGs without reading a PONG: more replies (640 KB) than the socket buffers
        // and the 4 KiB + 64 KiB allowance hold. The broker keeps reading (and, once it has
        // given up on us, discarding), so these writes do not block for long.
        let pings = 40_000
        var burst: [UInt8] = []
        for _ in 0..<pings { FrameEncoder.encode(.ping(token: 5), into: &burst) }
        connection.send(burst)
        let frames = try connection.readUntilClosed()
        let last = try #require(frames.last?.errorBody)
        #expect(last.knownCode == .repliesNotRead && last.isFatal)
        #expect(frames.dropLast().allSatisfy { $0 == .pong(token: 5) })
        #expect(broker.log.contains("replies not read"))
        _ = try bystander.roundTrip()
        print("unread replies: \(pings) PINGs sent, \(frames.count - 1) PONGs read, then ERROR \(last.code): \(last.message)")
    }

    /// `Protocol/vectors/broker.json`, frame by frame, against one heraldd.
    @Test func brokerVectorsHoldAgainstHeraldd() async throws {
        let broker = try await BrokerProcess()
        let bystander = try Bystander(broker.address)
        let vectors = try BrokerVectorRunner.vectors()
        #expect(vectors.count >= 40)
        for vector in vectors {
            try BrokerVectorRunner.run(vector, address: broker.address)
        }
        _ = try bystander.roundTrip()
    }

    /// Lowers the descriptor limit of a running process (prlimit(1) from util-linux).
    static func setDescriptorLimit(of pid: Int32, to limit: Int) throws {
        let prlimit = Process()
        prlimit.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
        prlimit.arguments = ["--pid", "\(pid)", "--nofile=\(limit):\(limit)"]
        try prlimit.run()
        prlimit.waitUntilExit()
        guard prlimit.terminationStatus == 0 else { throw RawConnectionError.unexpected("prlimit failed") }
    }
}

private func ms(_ seconds: Double) -> String {
    String(format: "%.2f ms", seconds * 1000)
}
