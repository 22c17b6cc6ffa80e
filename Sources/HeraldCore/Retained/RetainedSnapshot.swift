import HeraldProtocol

/// The retained messages as bytes, for keeping them across a broker restart (a state file, or
/// a sealed memfd in the service manager's file-descriptor store). Pure: heraldd does the I/O.
///
/// Layout, little-endian:
/// ```
/// "HRLDRET1"                         8-byte magic (format version 1)
/// u32 count
/// count × { u16 topic_len, u32 payload_len, u64 sender_id, u32 pid, u32 uid, u32 gid,
///           u64 retained_at, topic, payload }
/// u64 FNV-1a of everything above
/// ```
/// A snapshot is read whole or not at all: a wrong magic, a length past the end, a topic that
/// is not publishable, an empty payload, a duplicate topic, trailing bytes or a checksum
/// mismatch are errors, and nothing of it is used.
public enum RetainedSnapshot {
    static let magic: [UInt8] = Array("HRLDRET1".utf8)

    /// Why a snapshot cannot be read.
    public struct Invalid: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// The bytes of `messages`.
    public static func encode(_ messages: [RetainedMessage]) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(16 + messages.reduce(0) { $0 + 34 + $1.topic.count + $1.payload.count })
        bytes.appendLittleEndian(UInt32(messages.count))
        for message in messages {
            bytes.appendLittleEndian(UInt16(message.topic.count))
            bytes.appendLittleEndian(UInt32(message.payload.count))
            bytes.appendLittleEndian(message.senderID)
            bytes.appendLittleEndian(message.sender.pid)
            bytes.appendLittleEndian(message.sender.uid)
            bytes.appendLittleEndian(message.sender.gid)
            bytes.appendLittleEndian(message.retainedAt)
            bytes.append(contentsOf: message.topic)
            bytes.append(contentsOf: message.payload)
        }
        bytes.appendLittleEndian(checksum(bytes[...]))
        return bytes
    }

    /// The messages in `bytes`, checked; throws ``Invalid`` and returns nothing if any part is wrong.
    public static func decode(_ bytes: [UInt8], maxTopicLength: Int = ProtocolLimits.maxTopicLengthCeiling) throws(Invalid) -> [RetainedMessage] {
        guard bytes.count >= magic.count + 4 + 8 else { throw Invalid("\(bytes.count) bytes is too short for a retained-state snapshot") }
        guard Array(bytes[0..<magic.count]) == magic else { throw Invalid("not a Herald retained-state snapshot (wrong magic)") }
        let body = bytes[..<(bytes.count - 8)]
        let stored = UInt64(littleEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: bytes.count - 8, as: UInt64.self) })
        guard checksum(body) == stored else { throw Invalid("checksum mismatch (the snapshot is damaged or incomplete)") }
        var reader = SnapshotReader(bytes: body, position: magic.count)
        let count = Int(try reader.u32())
        var messages: [RetainedMessage] = []
        var topics = Set<[UInt8]>()
        for index in 0..<count {
            let topicLength = Int(try reader.u16())
            let payloadLength = Int(try reader.u32())
            let senderID = try reader.u64()
            let sender = PeerCredentials(pid: try reader.u32(), uid: try reader.u32(), gid: try reader.u32())
            let retainedAt = try reader.u64()
            let topic = try reader.bytes(topicLength)
            let payload = try reader.bytes(payloadLength)
            if let problem = topic.withUnsafeBytes({ Topic.validatePublishable($0, maxLength: maxTopicLength) }) {
                throw Invalid("message \(index + 1): topic \(problem)")
            }
            guard !payload.isEmpty else { throw Invalid("message \(index + 1): empty payload (an empty retained message is never stored)") }
            guard topics.insert(topic).inserted else { throw Invalid("message \(index + 1): topic '\(String(decoding: topic, as: UTF8.self))' appears twice") }
            messages.append(RetainedMessage(topic: topic, payload: payload, senderID: senderID, sender: sender, retainedAt: retainedAt))
        }
        guard reader.position == body.count else { throw Invalid("\(body.count - reader.position) bytes after the last message") }
        return messages
    }

    /// 64-bit FNV-1a: catches a torn or damaged snapshot (not an adversary: the file is the broker's own).
    static func checksum(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }
}

/// Reads fixed fields from a snapshot, throwing when one runs past the end.
private struct SnapshotReader {
    let bytes: ArraySlice<UInt8>
    var position: Int

    mutating func bytes(_ count: Int) throws(RetainedSnapshot.Invalid) -> [UInt8] {
        guard count <= bytes.endIndex - position else { throw RetainedSnapshot.Invalid("a field runs past the end of the snapshot") }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    mutating func u16() throws(RetainedSnapshot.Invalid) -> UInt16 { UInt16(try little(2)) }
    mutating func u32() throws(RetainedSnapshot.Invalid) -> UInt32 { UInt32(try little(4)) }
    mutating func u64() throws(RetainedSnapshot.Invalid) -> UInt64 { try little(8) }

    private mutating func little(_ count: Int) throws(RetainedSnapshot.Invalid) -> UInt64 {
        let field = try bytes(count)
        return field.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

extension Array where Element == UInt8 {
    fileprivate mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }
}
