import Foundation
import HeraldProtocol
import HeraldTestSupport
import Testing

/// Runs one case of `Protocol/vectors/broker.json` against a real heraldd over a socket.
enum BrokerVectorRunner {
    static func vectors() throws -> [BrokerVector] { try BrokerVector.all() }

    /// A fresh connection (handshaken if the case says so) sends the case's bytes; the first
    /// frame back must be the case's reply. After a fatal ERROR the broker closes with
    /// nothing more; after a non-fatal one the session goes on.
    static func run(_ vector: BrokerVector, address: String) throws {
        let connection: RawConnection
        if vector.state == .active {
            (connection, _) = try RawConnection.handshake(address, name: vector.name)
        } else {
            connection = try RawConnection(address)
        }
        connection.send(vector.bytes)
        let first = try connection.readFrame(timeout: 5)
        switch vector.reply {
        case .welcome:
            guard case .welcome = first else {
                Issue.record("\(vector.name): expected WELCOME, got \(String(describing: first))")
                return
            }
        case .error(let code, let fatal, let requestID):
            let error = first?.errorBody
            #expect(error?.knownCode == code, "\(vector.name): got \(String(describing: first))")
            #expect(error?.isFatal == fatal, "\(vector.name)")
            #expect(error?.requestID == requestID, "\(vector.name)")
            if fatal {
                let rest = try connection.readUntilClosed(timeout: 5)
                #expect(rest.isEmpty, "\(vector.name): frames after a fatal ERROR: \(rest)")
            } else if vector.state == .active {
                try connection.sync(token: 4242)
            } else {
                connection.send(.hello(Hello(clientName: "again")))
                guard case .welcome = try connection.readFrame(timeout: 5) else {
                    Issue.record("\(vector.name): a HELLO after a non-fatal refusal must be welcomed")
                    return
                }
            }
        }
    }
}
