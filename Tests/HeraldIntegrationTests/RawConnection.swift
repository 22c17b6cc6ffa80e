import CHeraldSys
import Foundation
import HeraldProtocol

/// A bare socket speaking the wire protocol byte by byte, for tests that must send what the
/// client library never would.
final class RawConnection: @unchecked Sendable {
    let fd: Int32
    private var buffer: [UInt8] = []
    /// Start of the unread bytes in `buffer` (consumed frames are dropped in bulk, not one by one).
    private var readOffset = 0

    /// Connects to `address` (`@name` or a path) without any handshake.
    init(_ address: String) throws {
        fd = herald_unix_stream_socket(0)
        let parsed = BusAddress(address)
        let result = parsed.name.withCString { herald_unix_connect(fd, $0, strlen($0), parsed.isAbstract ? 1 : 0) }
        guard fd >= 0, result == 0 else {
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: herald_errno()) ?? .ECONNREFUSED)
        }
    }

    /// Connects and completes the handshake, returning the WELCOME.
    static func handshake(
        _ address: String, name: String = "raw", policy: SlowConsumerPolicy? = nil, outputLimit: UInt32 = 0, capabilities: UInt32 = 0
    ) throws -> (RawConnection, Welcome) {
        let connection = try RawConnection(address)
        connection.send(.hello(Hello(slowConsumerPolicy: policy, outputLimit: outputLimit, capabilities: capabilities, clientName: name)))
        guard case .welcome(let welcome) = try connection.readFrame() else { throw RawConnectionError.unexpected("no WELCOME") }
        return (connection, welcome)
    }

    private var isClosed = false

    deinit { if !isClosed { close(fd) } }

    /// Closes the socket now; with `reset`, abortively (RST, as a crashed process might).
    func closeNow(reset: Bool = false) {
        guard !isClosed else { return }
        if reset {
            var option = linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        }
        close(fd)
        isClosed = true
    }

    func send(_ frame: Frame) { send(FrameEncoder.encode(frame)) }

    /// Writes all of `bytes` (blocking). Returns false if the broker closed the connection.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            // MSG_NOSIGNAL: a broker that closed on us must give EPIPE, not kill the test process.
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// Subscribes and waits for the OK.
    func subscribe(_ filter: String, id: UInt32) throws {
        send(.subscribe(Subscribe(requestID: id, subscriptionID: id, filter: filter)))
        let reply = try readFrame()
        guard reply == .ok(requestID: id) else { throw RawConnectionError.unexpected("SUBSCRIBE answered with \(String(describing: reply))") }
    }

    /// PING → PONG: everything sent before has been routed.
    func sync(token: UInt64 = 99) throws {
        send(.ping(token: token))
        while true {
            let frame = try readFrame()
            if frame == .pong(token: token) { return }
            if frame == nil { throw RawConnectionError.closed }
        }
    }

    /// The next frame, or nil at end of stream. Throws on timeout or undecodable bytes.
    func readFrame(timeout: Double = 10) throws -> Frame? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let decoded = try buffer.withUnsafeBytes { bytes in
                try FrameDecoder.decode(UnsafeRawBufferPointer(rebasing: bytes[readOffset...]))
            }
            if let (frame, length) = decoded {
                readOffset += length
                return frame
            }
            if readOffset > 0 {
                buffer.removeFirst(readOffset)
                readOffset = 0
            }
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let remaining = deadline.timeIntervalSinceNow
            guard remaining > 0 else { throw RawConnectionError.timeout }
            guard poll(&poller, 1, Int32(remaining * 1000) + 1) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 256 << 10)
            let n = read(fd, &chunk, chunk.count)
            if n == 0 { return nil }
            if n < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                if errno == ECONNRESET { return nil }
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            buffer.append(contentsOf: chunk[..<n])
        }
    }

    /// Reads frames until end of stream, returning them all.
    func readUntilClosed(timeout: Double = 10) throws -> [Frame] {
        var frames: [Frame] = []
        while let frame = try readFrame(timeout: timeout) { frames.append(frame) }
        return frames
    }

    /// Shrinks the kernel receive buffer so a stalled reader backs up quickly.
    func shrinkReceiveBuffer(to bytes: Int32 = 4096) {
        var size = bytes
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
}

enum RawConnectionError: Error {
    case timeout
    case closed
    case unexpected(String)
}

extension Frame {
    /// The payload of a MESSAGE frame.
    var messagePayload: [UInt8]? { if case .message(let delivery) = self { delivery.payload } else { nil } }
    /// The body of an ERROR frame.
    var errorBody: ErrorFrame? { if case .error(let error) = self { error } else { nil } }
}
