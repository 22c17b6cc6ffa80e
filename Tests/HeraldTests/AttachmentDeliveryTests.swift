import CHeraldSys
import Glibc
import HeraldProtocol
import Testing

@testable import Herald

/// Messages that carry descriptors or a sealed payload, through the receive buffers without
/// a socket: each gets its own attachment in order, a drop count ahead of one still reaches
/// it, a sealed payload is read from its mapping, and descriptors nobody took are closed.
@Suite("Attachments in delivery buffers")
struct AttachmentDeliveryTests {
    private static func pipeEnds() -> (read: Int32, write: Int32) {
        var ends: [Int32] = [-1, -1]
        _ = pipe(&ends)
        return (ends[0], ends[1])
    }

    private static func append(_ frame: [UInt8], _ attachment: MessageAttachment, to buffer: DeliveryBuffer) {
        frame.withUnsafeBytes { buffer.appendAttached(frame: $0, attachment: attachment, charge: 1) }
    }

    @Test func attachmentsGoToTheirOwnMessagesAndUntakenOnesAreClosed() {
        let buffer = DeliveryBuffer()
        let first = Self.pipeEnds()
        let second = Self.pipeEnds()
        DeliveryBufferTests.append(DeliveryBufferTests.frame("t", "plain"), to: buffer, run: 1)
        buffer.appendDropMarker(5)
        Self.append(DeliveryBufferTests.frame("t", "one"), MessageAttachment(descriptors: [first.write], withheld: 0), to: buffer)
        Self.append(DeliveryBufferTests.frame("t", "two"), MessageAttachment(descriptors: [second.write], withheld: 2), to: buffer)
        DeliveryBufferTests.append(DeliveryBufferTests.frame("t", "after"), to: buffer, run: 2)

        var inbox = Inbox()
        inbox.buffers = [buffer]
        var messages: [Message] = []
        while let message = inbox.next() { messages.append(message) }
        _ = inbox.releaseBuffers()
        buffer.removeAll()
        #expect(messages.map(\.string) == ["plain", "one", "two", "after"])
        #expect(messages.map(\.droppedBefore) == [0, 5, 0, 0])
        #expect(messages.map(\.fileDescriptors.count) == [0, 1, 1, 0])
        #expect(messages[1].fileDescriptors.first?.rawValue == first.write && messages[2].withheldFileDescriptors == 2)
        // Taken: ours to close. Not taken: closed with the last copy of the message.
        let taken = messages[1].takeFileDescriptors()
        #expect(taken.map(\.rawValue) == [first.write] && messages[1].fileDescriptors.isEmpty)
        messages.removeAll()
        var byte: UInt8 = 0
        #expect(read(second.read, &byte, 1) == 0, "end of file: the untaken write end was closed")
        #expect(fcntl(first.write, F_GETFD) >= 0, "the taken one is still open")
        close(first.write)
        close(first.read)
        close(second.read)
    }

    @Test func aSealedPayloadIsReadFromItsMappingAndAnUnsealedOneIsRefused() {
        let content = Array("shared pages".utf8)
        let sealed = content.withUnsafeBytes { herald_sealed_memfd("test", $0.baseAddress, $0.count) }
        var unmapped: UnsafeMutableRawPointer?
        let unsealed = herald_memfd_create_mapped("test", 0, &unmapped)
        let block = DescriptorBlock(count: 1, sealedPayload: true)
        let good = MessageAttachment.make(block: block, received: [sealed])
        let bad = MessageAttachment.make(block: block, received: [unsealed])
        let buffer = DeliveryBuffer()
        Self.append(DeliveryBufferTests.frame("big", ""), good, to: buffer)
        Self.append(DeliveryBufferTests.frame("big", ""), bad, to: buffer)
        var inbox = Inbox()
        inbox.buffers = [buffer]
        let mapped = inbox.next()
        let refused = inbox.next()
        #expect(mapped?.isMappedPayload == true && mapped?.withPayloadBytes { Array($0) } == content && mapped?.payload == content)
        #expect(mapped?.fileDescriptors.isEmpty == true, "the payload memfd is the payload, not a descriptor to take")
        #expect(refused?.isMappedPayload == false && refused?.payloadCount == 0)
        #expect(refused?.payloadRejection?.contains("not a memfd sealed") == true)
        // Replacing the payload of a mapped message drops the mapping, not anything else.
        var replaced = mapped!
        replaced.payload = [1, 2]
        #expect(!replaced.isMappedPayload && replaced.payload == [1, 2] && mapped?.payload == content)
        _ = inbox.releaseBuffers()
    }
}
