import CHeraldSys
import Foundation
import HeraldProtocol
import Testing

/// File descriptors through a real heraldd process (PROTOCOL.md §4.22), seen from outside:
/// the broker's own descriptor count, read from /proc, is back where it started after ten
/// thousand passes, so it keeps no copy of anything it passed on.
@Suite("heraldd: passing file descriptors")
struct DescriptorIntegrationTests {
    /// A raw connection that announced the `fds` capability.
    private static func connect(_ address: String, name: String) throws -> RawConnection {
        let connection = try RawConnection(address)
        connection.send(.hello(Hello(capabilities: Capabilities.descriptors, clientName: name)))
        guard case .welcome(let welcome) = try connection.readFrame(), welcome.capabilities & UInt16(Capabilities.descriptors) != 0 else {
            throw RawConnectionError.unexpected("no WELCOME confirming fds")
        }
        return connection
    }

    @Test func tenThousandPassesLeaveTheBrokersDescriptorCountAtItsBaseline() async throws {
        let broker = try await BrokerProcess(purpose: "fds")
        // The receiver reads with plain read(): the kernel closes the descriptors it is passed,
        // which is all this test needs on that side.
        let receiver = try Self.connect(broker.address, name: "receiver")
        try receiver.subscribe("pass", id: 1)
        let sender = try Self.connect(broker.address, name: "sender")
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        let baseline = ProcessInspector.openFileDescriptors(broker.pid)
        var publish = Publish(topic: "pass", payload: [])
        publish.descriptors = DescriptorBlock(count: 1)
        let frame = FrameEncoder.encode(.publish(publish))
        var delivered = 0
        for _ in 0..<200 {
            for _ in 0..<50 {
                let sent = frame.withUnsafeBytes { bytes in
                    withUnsafePointer(to: ends[1]) { herald_send_with_fds(sender.fd, bytes.baseAddress, bytes.count, $0, 1) }
                }
                #expect(sent == frame.count)
            }
            for _ in 0..<50 {
                guard case .message(let message) = try receiver.readFrame() else {
                    Issue.record("expected MESSAGE")
                    return
                }
                if message.descriptors?.count == 1 { delivered += 1 }
            }
        }
        #expect(delivered == 10_000)
        // The broker closes its copy right after the write that carried it.
        #expect(ProcessInspector.openFileDescriptors(broker.pid) == baseline)
        close(ends[1])
        var byte: UInt8 = 0
        #expect(read(ends[0], &byte, 1) == 0, "end of file: no copy of the write end is left open anywhere")
        close(ends[0])
        _ = await broker.stop()
    }
}
