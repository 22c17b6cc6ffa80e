import Foundation
import Herald
import Testing

/// The client checks who it talks to: a process that bound the bus address first (any
/// user can, for an abstract name) is refused before anything is sent to it.
@Suite("Herald library: broker verification", .timeLimit(.minutes(1)))
struct BrokerTrustTests {
    /// Runs the squatter fixture as `nobody` on a fresh address.
    final class Squatter: @unchecked Sendable {
        let address = TestEnvironment.uniqueAddress("squatter")
        let process: CLIProcess
        private let directory: URL

        init() async throws {
            directory = URL(fileURLWithPath: "/tmp/herald-squatter-\(getpid())-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
            let script = directory.appendingPathComponent("squatter.py").path
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/squatter.py")
            try FileManager.default.copyItem(atPath: source.path, toPath: script)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: script)
            process = try CLIProcess([script, address], executable: "/usr/bin/python3",
                prefix: ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"])
            guard await process.waitForLine(where: { $0 == "listening" }) != nil else {
                throw RawConnectionError.unexpected("the squatter did not start: \(process.standardError)")
            }
        }

        /// Stops it and returns how many bytes clients sent it.
        func bytesReceived() async -> Int {
            process.write("", close: true)
            let line = await process.waitForLine { $0.hasPrefix("received ") } ?? ""
            _ = await process.waitForExit()
            return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
        }

        deinit { try? FileManager.default.removeItem(at: directory) }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run the squatter as another user"))
    func aSquatterIsRefusedAndLearnsNothing() async throws {
        let squatter = try await Squatter()
        do {
            _ = try await Bus.connect(to: squatter.address, options: BusOptions(clientName: "secret-client-name"))
            Issue.record("connected to a broker running as nobody")
        } catch {
            if case .untrustedBroker(let uid, _) = error {
                #expect(uid == 65534)
            } else {
                Issue.record("expected untrustedBroker, got \(error)")
            }
        }
        // The CLI says so and exits 2 (no connection).
        let command = ["pub", "--address", squatter.address, "power/battery", "87"]
        let (status, _, errors) = try await CLIProcess.run(command)
        #expect(status == 2)
        #expect(errors.contains("uid 65534") && errors.contains("not trusted"), "\(errors)")
        // Nothing at all reached the squatter: no HELLO, no client name, no message.
        #expect(await squatter.bytesReceived() == 0)
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run the squatter as another user"))
    func aBrokerUIDCanBeTrustedExplicitly() async throws {
        let squatter = try await Squatter()
        // Trusting uid 65534 gets past the check: then the "broker" never answers HELLO.
        do {
            _ = try await Bus.connect(
                to: squatter.address,
                options: BusOptions(connectTimeout: .milliseconds(300), reconnect: nil, brokerTrust: .users([65534])))
            Issue.record("the squatter answered")
        } catch {
            #expect(error == .timeout, "\(error)")
        }
        // The CLI's --trust-uid does the same: past the check, then no answer (exit 2, timeout).
        let command = ["ping", "--address", squatter.address, "--trust-uid", "65534"]
        let (status, _, errors) = try await CLIProcess.run(command)
        #expect(status == 2)
        #expect(!errors.contains("not trusted"), "\(errors)")
        #expect(await squatter.bytesReceived() > 0)
    }

    @Test func theRealBrokerIsTrustedByDefault() async throws {
        let broker = try await BrokerProcess()
        let bus = try await Bus.connect(to: broker.address)
        #expect(bus.broker.uid == getuid())
        await bus.close()
    }
}
