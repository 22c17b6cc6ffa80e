import Foundation
import Herald
import Testing

/// The broker keeps a pidfd for the process that opened each connection: when that process
/// exits while another holds the socket, deliveries stop naming its pid (it may be reused).
@Suite("Process watch", .timeLimit(.minutes(1)))
struct ProcessWatchTests {
    @Test func aConnectionThatOutlivesItsProcessNamesPidZero() async throws {
        let broker = try await BrokerProcess()
        let bus = try await Bus.connect(to: broker.address)
        defer { Task { await bus.close() } }
        let messages = try await bus.subscribe("inherit/#")
        let printer = try await CLIIntegrationTests.startSubscriber(broker, ["inherit/#"])

        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/inheritor.py").path
        let fixture = try CLIProcess([script, broker.address], executable: "/usr/bin/python3")
        // Closing its standard input ends the child (also if the test fails early).
        defer { fixture.write("", close: true) }
        // The parent exits at once; the broker says so once its pidfd becomes readable.
        // (Foundation's Process may not see the parent's exit while the child holds its pipes.)
        let noticed = try await BlockingWork.run { () -> Bool in
            let deadline = Date().addingTimeInterval(20)
            while Date() < deadline {
                if broker.log.contains("the process that opened this connection exited") { return true }
                usleep(10_000)
            }
            return false
        }
        #expect(noticed, "\(broker.log)")
        fixture.write("publish\n")
        var iterator = messages.makeAsyncIterator()
        let message = try #require(try await iterator.next())
        #expect(message.string == "from the child")
        #expect(message.sender.pid == 0, "the parent's pid is no longer named")
        #expect(message.sender.processExited)
        // `herald sub` says so instead of printing a pid.
        let line = await printer.waitForLine(timeout: 10) { $0.contains("from the child") }
        #expect(line?.contains("pid 0 (exited) uid \(getuid())") == true, "\(line ?? printer.standardError)")
        #expect(message.sender.uid == UInt32(getuid()), "uid and gid stay those checked at connect")
    }
}
