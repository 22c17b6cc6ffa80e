import CHeraldSys
import Foundation
import Herald
import Testing

/// File descriptors and sealed-memfd payloads through the client library and a real heraldd
/// (PROTOCOL.md §4.22): what passes is a working open file at the other end, nothing leaks
/// on either side, and a receiver that does not take descriptors (or a payload it cannot
/// trust) is told.
@Suite("Passing file descriptors with the library", .timeLimit(.minutes(2)))
struct DescriptorLibraryTests {
    private static func connect(_ broker: BrokerProcess, _ name: String, _ options: BusOptions = BusOptions()) async throws -> Bus {
        var options = options
        options.clientName = name
        return try await Bus.connect(to: broker.address, options: options)
    }

    /// Reads until end of file.
    private static func readAll(_ descriptor: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if n <= 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    private static func write(_ descriptor: Int32, _ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) } == bytes.count
    }

    @Test func aPipePassedWithAPublishIsTheSamePipeAtTheSubscriber() async throws {
        let broker = try await BrokerProcess(purpose: "fds-pipe")
        let subscriber = try await Self.connect(broker, "subscriber")
        let publisher = try await Self.connect(broker, "publisher")
        let pipes = try await subscriber.subscribe("pipes")
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        try await publisher.publish("pipes", Array("write here".utf8), fileDescriptors: [FileDescriptor(rawValue: ends[1])])
        // The bus sent its own duplicate: the caller's descriptor is still the caller's to close.
        #expect(close(ends[1]) == 0)
        let message = try #require(try await LibraryIntegrationTests.collect(pipes, 1).first)
        #expect(message.string == "write here" && message.withheldFileDescriptors == 0)
        let passed = message.takeFileDescriptors()
        #expect(passed.count == 1 && message.fileDescriptors.isEmpty, "taken once, gone from the message")
        #expect(Self.write(passed[0].rawValue, "hello through the bus"))
        #expect(close(passed[0].rawValue) == 0)
        // End of file: no other copy of the write end stayed open (not in the broker, not in either bus).
        #expect(String(decoding: Self.readAll(ends[0]), as: UTF8.self) == "hello through the bus")
        close(ends[0])
        await publisher.close()
        await subscriber.close()
        _ = await broker.stop()
    }

    @Test func aSocketPassedAsADirectMessageAndAnAnswer() async throws {
        let broker = try await BrokerProcess(purpose: "fds-socket")
        let service = try await Self.connect(broker, "service", BusOptions(acceptsDirectMessages: true))
        let client = try await Self.connect(broker, "client")
        let requests = try await service.requests(on: "socket/open")
        let serving = Task {
            var ends: [Int32] = [-1, -1]
            _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends)
            for try await request in requests {
                try await request.respond(Array("your end".utf8), fileDescriptors: [FileDescriptor(rawValue: ends[1])])
                close(ends[1])
                break
            }
            return ends[0]
        }
        let answer = try await client.request("socket/open", "please")
        let serviceEnd = try await serving.value
        let clientEnd = try #require(answer.takeFileDescriptors().first)
        #expect(answer.string == "your end")
        #expect(Self.write(clientEnd.rawValue, "ping"))
        var reply = [UInt8](repeating: 0, count: 4)
        #expect(read(serviceEnd, &reply, 4) == 4 && reply == Array("ping".utf8))

        // And the other way, as a direct message to the service's inbox.
        let inbox = try service.directMessages()
        try await client.send(to: service.peerID, "socket/back", Array("back".utf8), fileDescriptors: [clientEnd])
        try await client.flush()
        let direct = try #require(try await LibraryIntegrationTests.collect(inbox, 1).first)
        let passedBack = try #require(direct.fileDescriptors.first)
        #expect(Self.write(passedBack.rawValue, "pong"))
        #expect(read(serviceEnd, &reply, 4) == 4 && reply == Array("pong".utf8))
        close(clientEnd.rawValue)
        close(serviceEnd)
        await client.close()
        await service.close()
        _ = await broker.stop()
    }

    @Test func largePayloadsTravelAsSealedMemfdsAndAreMappedReadOnly() async throws {
        let broker = try await BrokerProcess(purpose: "fds-memfd")
        let subscriber = try await Self.connect(broker, "subscriber")
        let publisher = try await Self.connect(broker, "publisher")
        let frames = try await subscriber.subscribe("frames")
        // Over the broker's 1 MiB maximum frame size: without a memfd it could not be published at all.
        let large = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try await publisher.publish("frames", large)
        // Rendered in place and published without a copy.
        var rendered = try SealedPayload(count: 8 << 20)
        rendered.withUnsafeMutableBytes { _ = $0.initializeMemory(as: UInt8.self, repeating: 0xA5) }
        try await publisher.publish("frames", rendered)
        // Below the threshold: inline, as always.
        try await publisher.publish("frames", "small")
        try await publisher.flush()
        let received = try await LibraryIntegrationTests.collect(frames, 3)
        #expect(received[0].isMappedPayload && received[0].payloadCount == large.count)
        #expect(received[0].withPayloadBytes { $0.elementsEqual(large) })
        #expect(received[1].isMappedPayload && received[1].payloadCount == 8 << 20)
        #expect(received[1].withPayloadBytes { $0.allSatisfy { $0 == 0xA5 } })
        #expect(!received[2].isMappedPayload && received[2].string == "small")
        #expect(received.allSatisfy { $0.fileDescriptors.isEmpty && $0.payloadRejection == nil })
        await publisher.close()
        await subscriber.close()
        _ = await broker.stop()
    }

    @Test func aBusThatDoesNotAcceptDescriptorsIsToldWhatItMissed() async throws {
        let broker = try await BrokerProcess(purpose: "fds-withheld")
        let refusing = try await Self.connect(broker, "refusing", BusOptions(acceptsFileDescriptors: false))
        let publisher = try await Self.connect(broker, "publisher")
        let messages = try await refusing.subscribe("things")
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        try await publisher.publish("things", Array("with a pipe".utf8), fileDescriptors: [FileDescriptor(rawValue: ends[1])])
        try await publisher.publish("things", try SealedPayload(copying: Array("sealed".utf8)))
        try await publisher.flush()
        close(ends[1])
        let received = try await LibraryIntegrationTests.collect(messages, 2)
        #expect(received[0].string == "with a pipe" && received[0].withheldFileDescriptors == 1 && received[0].fileDescriptors.isEmpty)
        #expect(received[1].payloadCount == 0 && received[1].withheldFileDescriptors == 1)
        #expect(received[1].payloadRejection?.contains("withheld") == true)
        // Nothing holds the write end: the broker closed its copy, the refusing bus never got one.
        #expect(Self.readAll(ends[0]).isEmpty)
        close(ends[0])
        // Such a bus cannot pass descriptors either.
        await #expect(throws: HeraldError.self) {
            try await refusing.publish("things", [], fileDescriptors: [FileDescriptor(rawValue: 0)])
        }
        await publisher.close()
        await refusing.close()
        _ = await broker.stop()
    }

    @Test func aPayloadMemfdThatIsNotSealedIsNotTrusted() async throws {
        let broker = try await BrokerProcess(purpose: "fds-unsealed")
        let subscriber = try await Self.connect(broker, "subscriber")
        let messages = try await subscriber.subscribe("sneaky")
        // A hand-made client says "sealed payload" and passes a memfd it can still rewrite.
        let (raw, _) = try RawConnection.handshake(broker.address, name: "sneaky", capabilities: Capabilities.descriptors)
        var unmapped: UnsafeMutableRawPointer?
        let memfd = herald_memfd_create_mapped("unsealed", 0, &unmapped)
        #expect(Self.write(memfd, "looks fine now"))
        var publish = Publish(topic: "sneaky", payload: [])
        publish.descriptors = DescriptorBlock(count: 1, sealedPayload: true)
        let frame = FrameEncoder.encode(.publish(publish))
        let sent = frame.withUnsafeBytes { bytes in withUnsafePointer(to: memfd) { herald_send_with_fds(raw.fd, bytes.baseAddress, bytes.count, $0, 1) } }
        #expect(sent == frame.count)
        let message = try #require(try await LibraryIntegrationTests.collect(messages, 1).first)
        #expect(message.payloadCount == 0 && !message.isMappedPayload)
        #expect(message.payloadRejection?.contains("not a memfd sealed") == true)
        close(memfd)
        raw.closeNow()
        await subscriber.close()
        _ = await broker.stop()
    }

    @Test func tenThousandPassesThroughTheLibraryLeakNothing() async throws {
        let broker = try await BrokerProcess(purpose: "fds-10k")
        let subscriber = try await Self.connect(broker, "subscriber")
        let publisher = try await Self.connect(broker, "publisher")
        let messages = try await subscriber.subscribe("pass")
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        let brokerBaseline = ProcessInspector.openFileDescriptors(broker.pid)
        let passes = 10_000
        let consumer = Task {
            var passed = 0
            var taken: [FileDescriptor] = []
            for try await message in messages {
                passed += message.fileDescriptors.count
                // Every hundredth is taken (and closed by us); the rest close with their message.
                if passed % 100 == 0 { taken += message.takeFileDescriptors() }
                if passed == passes { break }
            }
            for descriptor in taken { close(descriptor.rawValue) }
            return passed
        }
        for index in 0..<passes {
            try await publisher.publish("pass", Array("\(index)".utf8), fileDescriptors: [FileDescriptor(rawValue: ends[1])])
            // Bounded in flight: the broker holds at most 1024 descriptors for this user.
            if index % 200 == 199 { try await publisher.flush() }
        }
        try await publisher.flush()
        #expect(try await consumer.value == passes)
        #expect(ProcessInspector.openFileDescriptors(broker.pid) == brokerBaseline)
        close(ends[1])
        // End of file: neither bus kept a copy of the write end (taken or not), nor did the broker.
        #expect(Self.readAll(ends[0]).isEmpty)
        close(ends[0])
        await publisher.close()
        await subscriber.close()
        _ = await broker.stop()
    }
}
