import CHeraldSys
import Foundation
import HeraldCore
import HeraldProtocol
import HeraldServer
import Logging
import Synchronization

/// A real ``EpollServer`` over a real ``Listener`` on a unique abstract address, running on
/// its own thread in this process, stopped through its ``EpollServer/StopHandle``.
final class ServerHarness: @unchecked Sendable {
    let address: BusAddress
    private let server: EpollServer
    private let done = DispatchSemaphore(value: 0)
    private var exit: EpollServer.Exit?
    private static let counter = Mutex(0)

    init(configure: (inout BrokerConfiguration) -> Void = { _ in }) throws {
        var configuration = BrokerConfiguration()
        configure(&configuration)
        let number = ServerHarness.counter.withLock { value -> Int in
            value += 1
            return value
        }
        address = BusAddress("@herald-server-test/\(getpid())/\(number)")
        let logger = Logger(label: "server-test", factory: { _ in SwiftLogNoOpLogHandler() })
        let core = BrokerCore(configuration: configuration, logger: logger, brokerPID: 1, brokerUID: getuid())
        server = try EpollServer(core: core, listeners: [try Listener(address: address)], logger: logger)
        let thread = Thread { [self] in
            exit = server.run()
            done.signal()
        }
        thread.start()
    }

    /// Stops the server and waits (bounded) for `run()` to return.
    func stop(timeout: Double = 10) -> EpollServer.Exit? {
        server.stopHandle.requestStop()
        guard done.wait(timeout: .now() + timeout) == .success else { return nil }
        return exit
    }

    deinit {
        if exit == nil { _ = stop() }
    }
}

/// A blocking client socket speaking raw frames.
final class TestSocket {
    let fd: Int32
    private var buffer: [UInt8] = []

    init(_ address: BusAddress) throws {
        fd = herald_unix_stream_socket(0)
        let connected = address.name.withCString { herald_unix_connect(fd, $0, strlen($0), address.isAbstract ? 1 : 0) }
        guard fd >= 0, connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    func send(_ frame: Frame) { send(FrameEncoder.encode(frame)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            offset += n
        }
    }

    /// Ends the writing side only (the broker sees end of stream; this side can still read).
    func shutdownWriting() { shutdown(fd, Int32(SHUT_WR)) }

    /// The next frame; nil at end of stream or after the 10 s receive timeout.
    func readFrame() throws -> Frame? {
        while true {
            if let (frame, length) = try FrameDecoder.decode(buffer) {
                buffer.removeFirst(length)
                return frame
            }
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            let n = read(fd, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Frames until end of stream.
    func readUntilClosed() throws -> [Frame] {
        var frames: [Frame] = []
        while let frame = try readFrame() { frames.append(frame) }
        return frames
    }
}
