import Foundation
import HeraldProtocol

/// One case of `Protocol/vectors/broker.json`: bytes a client sends in a given session
/// state, and what the broker must answer first. The broker tests run every case against
/// the routing core, the integration tests against a real heraldd.
public struct BrokerVector: Decodable, Sendable, CustomStringConvertible {
    /// Where in the session the bytes arrive.
    public enum State: String, Decodable, Sendable {
        /// They are the connection's first bytes.
        case handshaking
        /// They follow a completed handshake.
        case active
    }

    /// What the broker must send first.
    public enum Reply: Sendable, Equatable {
        /// An ERROR with this code, fatal flag and request id.
        case error(ErrorCode, fatal: Bool, requestID: UInt32)
        /// A WELCOME (the bytes were a valid HELLO).
        case welcome
    }

    public let name: String
    public let summary: String
    public let state: State
    public let bytes: [UInt8]
    public let reply: Reply

    public var description: String { name }

    private enum Keys: String, CodingKey { case name, description, state, hex, reply }
    private enum ReplyKeys: String, CodingKey { case error, fatal, request_id, frame }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Keys.self)
        name = try container.decode(String.self, forKey: .name)
        summary = try container.decode(String.self, forKey: .description)
        state = try container.decode(State.self, forKey: .state)
        let hex = try container.decode(String.self, forKey: .hex)
        guard let bytes = BrokerVector.bytes(fromHex: hex) else {
            throw DecodingError.dataCorruptedError(forKey: .hex, in: container, debugDescription: "not hex: \(hex)")
        }
        self.bytes = bytes
        let reply = try container.nestedContainer(keyedBy: ReplyKeys.self, forKey: .reply)
        if let frame = try reply.decodeIfPresent(String.self, forKey: .frame) {
            guard frame == "welcome" else {
                throw DecodingError.dataCorruptedError(forKey: .frame, in: reply, debugDescription: "unknown reply frame \(frame)")
            }
            self.reply = .welcome
        } else {
            let name = try reply.decode(String.self, forKey: .error)
            guard let code = ErrorCode.allCases.first(where: { ErrorCodeNames.name(of: $0) == name }) else {
                throw DecodingError.dataCorruptedError(forKey: .error, in: reply, debugDescription: "unknown error code \(name)")
            }
            self.reply = .error(code, fatal: try reply.decode(Bool.self, forKey: .fatal),
                requestID: try reply.decode(UInt32.self, forKey: .request_id))
        }
    }

    /// `Protocol/vectors/broker.json`.
    public static let file = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protocol/vectors/broker.json")

    /// Every case in the file.
    public static func all() throws -> [BrokerVector] {
        struct File: Decodable { let vectors: [BrokerVector] }
        return try JSONDecoder().decode(File.self, from: Data(contentsOf: file)).vectors
    }

    private static func bytes(fromHex hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
