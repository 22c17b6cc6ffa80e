import CHeraldSys
import Foundation
import HeraldCore
import HeraldProtocol
import Testing

/// File descriptors through the real epoll server and real sockets (PROTOCOL.md §4.22): a
/// pipe, a socket and a sealed memfd arrive working; a peer that passes descriptors without
/// announcing it is refused and its descriptors closed; ten thousand passes leave no copy
/// open anywhere (a pipe reports end of file only when every copy of its write end is closed).
@Suite("Passing file descriptors (server)")
struct DescriptorServerTests {
    /// A blocking client socket that sends and receives descriptors with its frames.
    final class PassingSocket {
        let fd: Int32
        private var buffer: [UInt8] = []
        private var descriptors: [Int32] = []
        var peerID: UInt64 = 0

        init(_ address: BusAddress, capabilities: UInt32 = Capabilities.descriptors) throws {
            fd = herald_unix_stream_socket(0)
            let connected = address.name.withCString { herald_unix_connect(fd, $0, strlen($0), address.isAbstract ? 1 : 0) }
            guard fd >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            send(.hello(Hello(capabilities: capabilities, clientName: "passing")))
            guard case .welcome(let welcome) = try readFrame().frame else { throw POSIXError(.EPROTO) }
            peerID = welcome.peerID
        }

        deinit {
            close(fd)
            for descriptor in descriptors { close(descriptor) }
        }

        func send(_ frame: Frame, descriptors: [Int32] = []) {
            let bytes = FrameEncoder.encode(frame)
            var offset = 0
            if !descriptors.isEmpty {
                offset = bytes.withUnsafeBytes { raw in
                    descriptors.withUnsafeBufferPointer { herald_send_with_fds(fd, raw.baseAddress, raw.count, $0.baseAddress, Int32($0.count)) }
                }
                guard offset > 0 else { return }
            }
            while offset < bytes.count {
                let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard n > 0 else { return }
                offset += n
            }
        }

        func subscribe(_ filter: String) throws {
            send(.subscribe(Subscribe(requestID: 1, subscriptionID: 1, filter: filter)))
            guard case .ok = try readFrame().frame else { throw POSIXError(.EPROTO) }
        }

        /// The next frame and the descriptors it carries (its `fd_count`, taken in arrival
        /// order); nil frame at end of stream or after the receive timeout.
        func readFrame() throws -> (frame: Frame?, descriptors: [Int32]) {
            while true {
                if let (frame, length) = try FrameDecoder.decode(buffer) {
                    buffer.removeFirst(length)
                    let count = Self.passedCount(frame)
                    guard descriptors.count >= count else { throw POSIXError(.EPROTO) }
                    let taken = Array(descriptors.prefix(count))
                    descriptors.removeFirst(count)
                    return (frame, taken)
                }
                var chunk = [UInt8](repeating: 0, count: 64 << 10)
                var received = [Int32](repeating: -1, count: 253)
                var count: Int32 = 0
                var truncated: Int32 = 0
                let n = herald_recv_stream(fd, &chunk, chunk.count, &received, 253, &count, &truncated)
                descriptors.append(contentsOf: received[..<Int(count)])
                if n <= 0 { return (nil, []) }
                buffer.append(contentsOf: chunk[..<n])
            }
        }

        static func passedCount(_ frame: Frame) -> Int {
            switch frame {
            case .message(let delivery), .direct(let delivery): Int(delivery.descriptors?.count ?? 0)
            case .response(let response): Int(response.descriptors?.count ?? 0)
            default: 0
            }
        }
    }

    private static func publish(_ topic: String, _ text: String = "", count: UInt8, sealed: Bool = false) -> Frame {
        var publish = Publish(topic: topic, payload: Array(text.utf8))
        publish.descriptors = DescriptorBlock(count: count, sealedPayload: sealed)
        return .publish(publish)
    }

    /// A server whose shutdown does not wait long for these tests' idle clients.
    private static func server() throws -> ServerHarness {
        try ServerHarness { $0.shutdownGrace = 0.2 }
    }

    private static func pipePair() -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        return (ends[0], ends[1])
    }

    private static func readAll(_ fd: Int32, upTo limit: Int = 4096) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: limit)
        let n = read(fd, &bytes, limit)
        return n > 0 ? Array(bytes[..<n]) : []
    }

    @Test func aPipeASocketAndASealedMemfdArriveWorking() throws {
        let server = try Self.server()
        let receiver = try PassingSocket(server.address)
        try receiver.subscribe("things/#")
        let sender = try PassingSocket(server.address)

        // A pipe's write end: what the receiver writes, the sender reads.
        let pipe = Self.pipePair()
        sender.send(Self.publish("things/pipe", count: 1), descriptors: [pipe.write])
        close(pipe.write)
        let piped = try receiver.readFrame()
        #expect(piped.descriptors.count == 1)
        _ = Array("through the pipe".utf8).withUnsafeBytes { write(piped.descriptors[0], $0.baseAddress, $0.count) }
        close(piped.descriptors[0])
        #expect(String(decoding: Self.readAll(pipe.read), as: UTF8.self) == "through the pipe")
        #expect(Self.readAll(pipe.read).isEmpty, "end of file: the broker closed its copy too")
        close(pipe.read)

        // One end of a socket pair: a private channel between the two.
        var pair: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0)
        sender.send(Self.publish("things/socket", count: 1), descriptors: [pair[1]])
        close(pair[1])
        let socket = try receiver.readFrame()
        _ = Array("over the socket".utf8).withUnsafeBytes { write(socket.descriptors[0], $0.baseAddress, $0.count) }
        close(socket.descriptors[0])
        #expect(String(decoding: Self.readAll(pair[0]), as: UTF8.self) == "over the socket")
        close(pair[0])

        // A sealed memfd: the payload by reference, and its seals checked by the receiver.
        let content = Array(repeating: UInt8(0x5A), count: 1 << 20)
        let memfd = content.withUnsafeBytes { herald_sealed_memfd("payload", $0.baseAddress, $0.count) }
        sender.send(Self.publish("things/memfd", count: 1, sealed: true), descriptors: [memfd])
        close(memfd)
        let mapped = try receiver.readFrame()
        guard case .message(let message) = mapped.frame else {
            Issue.record("expected MESSAGE, got \(String(describing: mapped.frame))")
            return
        }
        #expect(message.descriptors == DescriptorBlock(count: 1, sealedPayload: true))
        #expect(herald_memfd_is_sealed(mapped.descriptors[0]) == 1)
        var status = stat()
        #expect(fstat(mapped.descriptors[0], &status) == 0 && status.st_size == content.count)
        // The sender's writes left the shared file offset at the end: read from the start.
        var head = [UInt8](repeating: 0, count: 16)
        #expect(pread(mapped.descriptors[0], &head, 16, 0) == 16 && head == Array(content.prefix(16)))
        close(mapped.descriptors[0])
        #expect(server.stop() == .stopRequested)
    }

    @Test func descriptorsFromAPeerThatDidNotAnnounceThemAreClosedAndItIsDisconnected() throws {
        try expectFatal(.unexpectedDescriptors, sending: .publish(Publish(topic: "a", payload: [1])), capabilities: 0)
    }

    @Test func aCountThatDoesNotMatchTheDescriptorsSentIsFatal() throws {
        // Announces two, passes one.
        try expectFatal(.descriptorCountMismatch, sending: Self.publish("a", count: 2))
    }

    /// Sends `frame` with a pipe's write end from a peer with `capabilities`, and expects a
    /// fatal `code`, the disconnect, and end of file on the pipe: the broker kept no copy.
    private func expectFatal(_ code: ErrorCode, sending frame: Frame, capabilities: UInt32 = Capabilities.descriptors) throws {
        let server = try Self.server()
        let peer = try PassingSocket(server.address, capabilities: capabilities)
        let pipe = Self.pipePair()
        peer.send(frame, descriptors: [pipe.write])
        close(pipe.write)
        let answer = try peer.readFrame()
        guard case .error(let error) = answer.frame else {
            Issue.record("expected ERROR, got \(String(describing: answer.frame))")
            return
        }
        #expect(error.knownCode == code && error.isFatal)
        #expect(try peer.readFrame().frame == nil, "disconnected")
        #expect(Self.readAll(pipe.read).isEmpty, "end of file: nobody holds the write end any more")
        close(pipe.read)
        #expect(server.stop() == .stopRequested)
    }

    @Test func tenThousandPassesLeaveNoCopyBehind() throws {
        let server = try Self.server()
        let receiver = try PassingSocket(server.address)
        try receiver.subscribe("pass")
        let sender = try PassingSocket(server.address)
        let pipe = Self.pipePair()
        var passed = 0
        for _ in 0..<200 {
            for _ in 0..<50 { sender.send(Self.publish("pass", count: 1), descriptors: [pipe.write]) }
            for _ in 0..<50 {
                let received = try receiver.readFrame()
                #expect(received.descriptors.count == 1)
                for descriptor in received.descriptors { close(descriptor) }
                passed += received.descriptors.count
            }
        }
        #expect(passed == 10_000)
        // End of file only once all 10,000 copies of the write end are closed: the broker
        // closed each of its own after the write that carried it.
        close(pipe.write)
        #expect(Self.readAll(pipe.read).isEmpty, "no copy of the write end is left anywhere")
        close(pipe.read)
        #expect(server.stop() == .stopRequested)
    }

    @Test func aSenderThatLeavesWithDescriptorsInFlightStillDeliversThem() throws {
        let server = try Self.server()
        let receiver = try PassingSocket(server.address)
        try receiver.subscribe("inflight")
        let pipe = Self.pipePair()
        do {
            let sender = try PassingSocket(server.address)
            for _ in 0..<20 { sender.send(Self.publish("inflight", count: 1), descriptors: [pipe.write]) }
            // A PING answered means the broker handled all twenty before the sender goes.
            sender.send(.ping(token: 1))
            _ = try sender.readFrame()
        }
        close(pipe.write)
        var received = 0
        for _ in 0..<20 {
            let frame = try receiver.readFrame()
            received += frame.descriptors.count
            for descriptor in frame.descriptors { close(descriptor) }
        }
        #expect(received == 20)
        #expect(Self.readAll(pipe.read).isEmpty, "every copy closed: the broker's after writing them")
        close(pipe.read)
        #expect(server.stop() == .stopRequested)
    }
}
