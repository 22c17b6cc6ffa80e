import Herald
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in broker for measuring the client library alone (workload L1).
///
/// It listens on a private abstract socket and serves each connection on a thread of its
/// own with blocking I/O: it answers HELLO, SUBSCRIBE, UNSUBSCRIBE, PING and GOODBYE,
/// counts PUBLISH frames and checks their sequence numbers, and when a client publishes on
/// `bench/start` it writes N pre-encoded MESSAGE frames back to back (patching only the
/// sequence number and time of each). Routing, queues and fan-out are left out, so its
/// cost per message is a few stores and a share of a 256 KiB write: the library sets the pace.
final class LoopbackBroker: Sendable {
    let address: String
    private let listenFD: Int32
    private let messages: UInt64
    private let payloadSize: Int
    /// PUBLISH frames read (not counting `bench/start`), and how many broke the sequence.
    let publishArrived = Atomic<UInt64>(0)
    let publishOutOfOrder = Atomic<UInt64>(0)
    /// CPU nanoseconds of the serving thread: up to its latest PONG, and spent sending.
    let cpuAtLastPong = Atomic<UInt64>(0)
    let sendCPUNanos = Atomic<UInt64>(0)
    /// Set when all N messages have been written.
    let sendFinished = Atomic<Bool>(false)

    /// Largest frame accepted (also announced in WELCOME); the read buffer holds two.
    private static let maxFrameSize = 1 << 20

    init(messages: UInt64, payloadSize: Int) throws(BenchError) {
        self.messages = messages
        self.payloadSize = payloadSize
        let name = "herald-bench-loopback/\(getpid())"
        address = "@" + name
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard listenFD >= 0 else { throw BenchError("loopback broker: socket failed (errno \(errno))") }
        var socketAddress = sockaddr_un()
        socketAddress.sun_family = sa_family_t(AF_UNIX)
        let nameBytes = Array(name.utf8)
        withUnsafeMutableBytes(of: &socketAddress.sun_path) { path in
            path[0] = 0  // abstract namespace
            for (offset, byte) in nameBytes.enumerated() { path[offset + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + 1 + nameBytes.count)
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listenFD, $0, length) }
        }
        guard bound == 0, listen(listenFD, 8) == 0 else {
            let error = errno
            close(listenFD)
            throw BenchError("loopback broker: cannot listen on \(address) (errno \(error))")
        }
    }

    /// Starts accepting connections.
    func start() {
        startThread { [self] in
            while true {
                let fd = accept(listenFD, nil, nil)
                if fd < 0 {
                    if errno == EINTR { continue }
                    return
                }
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                startThread { [self] in serve(fd) }
            }
        }
    }

    private func serve(_ fd: Int32) {
        defer { close(fd) }
        let capacity = 2 * LoopbackBroker.maxFrameSize
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        defer { buffer.deallocate() }
        var start = 0
        var end = 0
        var greeted = false
        var nextSequence: UInt64 = 0
        var arrived: UInt64 = 0
        var outOfOrder: UInt64 = 0
        let startTopic = Array(BenchTopics.start.utf8)
        while true {
            if start == end {
                start = 0
                end = 0
            } else if capacity - end < LoopbackBroker.maxFrameSize {
                memmove(buffer, buffer + start, end - start)
                end -= start
                start = 0
            }
            let n = read(fd, buffer + end, capacity - end)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            end += n
            while end - start >= FrameHeader.size {
                let header = FrameHeader(loadingFrom: buffer + start)
                let length = header.frameLength
                guard length <= LoopbackBroker.maxFrameSize + FrameHeader.size else { return }
                guard end - start >= length else { break }
                let frame = UnsafeRawBufferPointer(start: buffer + start, count: length)
                let body = UnsafeRawBufferPointer(rebasing: frame[FrameHeader.size...])
                start += length
                if !greeted {
                    guard case .hello? = try? FrameDecoder.decode(frame)?.frame else { return }
                    greeted = true
                    guard send(fd, .welcome(welcome(for: fd))) else { return }
                    continue
                }
                if header.type == FrameType.publish.rawValue {
                    let topicLength = Int(header.aux)
                    guard body.count >= topicLength else { return }
                    if topicLength == startTopic.count && memcmp(body.baseAddress!, startTopic, topicLength) == 0 {
                        guard sendMessages(fd) else { return }
                        continue
                    }
                    let payload = UnsafeRawBufferPointer(rebasing: body[topicLength...])
                    if let fields = BenchHeader.read(payload) {
                        if fields.sequence != nextSequence { outOfOrder += 1 }
                        nextSequence = fields.sequence &+ 1
                    }
                    arrived += 1
                    continue
                }
                guard let type = FrameType(rawValue: header.type),
                    let decoded = try? FrameDecoder.decodeBody(type: type, header: header, body: body)
                else { return }
                switch decoded {
                case .subscribe(let request):
                    guard send(fd, .ok(requestID: request.requestID)) else { return }
                case .unsubscribe(let request):
                    guard send(fd, .ok(requestID: request.requestID)) else { return }
                case .ping(let token):
                    // Counters first: a flush returning means the counts are final.
                    publishArrived.store(arrived, ordering: .relaxed)
                    publishOutOfOrder.store(outOfOrder, ordering: .relaxed)
                    cpuAtLastPong.store(UInt64(threadCPUSeconds() * 1e9), ordering: .releasing)
                    guard send(fd, .pong(token: token)) else { return }
                case .goodbye:
                    _ = send(fd, .goodbye(Goodbye(reason: 0, message: "bye")))
                    return
                default:
                    break
                }
            }
        }
    }

    private func welcome(for fd: Int32) -> Welcome {
        Welcome(
            version: ProtocolVersion.v1, peerID: 1,
            credentials: PeerCredentials(pid: UInt32(getpid()), uid: UInt32(getuid()), gid: UInt32(getgid())),
            brokerPID: UInt32(getpid()), brokerUID: UInt32(getuid()), maxFrameSize: UInt32(LoopbackBroker.maxFrameSize),
            maxTopicLength: UInt32(ProtocolLimits.defaultMaxTopicLength),
            maxSubscriptions: UInt32(ProtocolLimits.defaultMaxSubscriptions),
            outputLimit: UInt32(ProtocolLimits.defaultOutputLimit), slowConsumerPolicy: .drop,
            serverName: "herald bench loopback")
    }

    /// Writes N MESSAGE frames, 256 KiB per write.
    private func sendMessages(_ fd: Int32) -> Bool {
        let cpuStart = threadCPUSeconds()
        defer {
            sendCPUNanos.store(UInt64((threadCPUSeconds() - cpuStart) * 1e9), ordering: .relaxed)
            sendFinished.store(true, ordering: .releasing)
        }
        let topic = Array(BenchTopics.data.utf8)
        let frame = FrameEncoder.encode(
            .message(
                Delivery(
                    senderID: 1, sender: PeerCredentials(pid: UInt32(getpid()), uid: UInt32(getuid()), gid: UInt32(getgid())),
                    topic: topic, payload: BenchHeader.makePayload(size: payloadSize, kind: BenchHeader.data, publisher: 0))))
        let frameLength = frame.count
        let payloadOffset = FrameHeader.size + ProtocolLimits.messageSenderBlockSize + topic.count
        let perWrite = max(1, (256 << 10) / frameLength)
        var chunk: [UInt8] = []
        chunk.reserveCapacity(perWrite * frameLength)
        for _ in 0..<perWrite { chunk.append(contentsOf: frame) }
        var sequence: UInt64 = 0
        return chunk.withUnsafeMutableBytes { raw -> Bool in
            while sequence < messages {
                let count = Int(min(UInt64(perWrite), messages - sequence))
                let now = monotonicNanos()
                for index in 0..<count {
                    let payload = UnsafeMutableRawBufferPointer(
                        rebasing: raw[(index * frameLength + payloadOffset)..<((index + 1) * frameLength)])
                    BenchHeader.stamp(payload, sequence: sequence + UInt64(index), time: now)
                }
                guard Output(fd: fd).write(UnsafeRawBufferPointer(rebasing: raw[..<(count * frameLength)])) else { return false }
                sequence += UInt64(count)
            }
            return true
        }
    }

    private func send(_ fd: Int32, _ frame: Frame) -> Bool {
        FrameEncoder.encode(frame).withUnsafeBytes { Output(fd: fd).write($0) }
    }
}
