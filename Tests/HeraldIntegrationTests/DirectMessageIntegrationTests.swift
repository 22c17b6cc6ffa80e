import Foundation
import Herald
import Testing

/// Direct messages end to end: the library and `herald send` against a real heraldd.
@Suite("Direct messages end to end", .timeLimit(.minutes(1)))
struct DirectMessageIntegrationTests {
    @Test func aServiceWritesBackToTheClientThatAsked() async throws {
        let broker = try await BrokerProcess()
        let service = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "service"))
        defer { Task { await service.close() } }
        let hellos = try await service.subscribe("service/hello")
        let client = try await Bus.connect(
            to: broker.address, options: BusOptions(clientName: "client", acceptsDirectMessages: true))
        defer { Task { await client.close() } }
        let inbox = try client.directMessages()

        // The client announces itself; the service answers it alone, by the peer id the
        // broker stamped on the announcement.
        try await client.publish("service/hello", "hi")
        try await client.flush()
        let hello = try #require(try await LibraryIntegrationTests.collect(hellos, 1).first)
        #expect(hello.sender.peerID == client.peerID)
        try await service.send(to: hello.sender.peerID, "service/welcome", "welcome, peer \(hello.sender.peerID)")
        try await service.flush()
        let direct = try #require(try await LibraryIntegrationTests.collect(inbox, 1).first)
        #expect(direct.topic == "service/welcome" && direct.string == "welcome, peer \(client.peerID)")
        #expect(direct.sender.peerID == service.peerID && direct.sender.pid == UInt32(getpid()))
    }

    @Test func undeliverableDirectMessagesAreReportedByFlush() async throws {
        let broker = try await BrokerProcess()
        let sender = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "sender"))
        defer { Task { await sender.close() } }
        try await sender.send(to: 987_654, "x", "anyone?")
        do {
            try await sender.flush()
            Issue.record("a send to no one was not reported")
        } catch {
            guard case .unknownPeer = error else { Issue.record("expected unknownPeer, got \(error)"); return }
        }
        // A bus that did not ask for direct messages is not sent them.
        let closed = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "closed"))
        defer { Task { await closed.close() } }
        try await sender.send(to: closed.peerID, "x", "hello?")
        do {
            try await sender.flush()
            Issue.record("a send to a bus without an inbox was not reported")
        } catch {
            guard case .directNotAccepted = error else { Issue.record("expected directNotAccepted, got \(error)"); return }
        }
        #expect(throws: HeraldError.self) { _ = try closed.directMessages() }
        #expect(sender.isConnected)
    }

    @Test func theCLISendsByPeerId() async throws {
        let broker = try await BrokerProcess()
        let receiver = try await Bus.connect(
            to: broker.address, options: BusOptions(clientName: "receiver", acceptsDirectMessages: true))
        defer { Task { await receiver.close() } }
        let inbox = try receiver.directMessages()
        let (status, _, errors) = try await CLIProcess.run(["send", "--address", broker.address, "\(receiver.peerID)", "note/x", "from the shell"])
        #expect(status == 0, "\(errors)")
        let message = try #require(try await LibraryIntegrationTests.collect(inbox, 1).first)
        #expect(message.topic == "note/x" && message.string == "from the shell")
        let (missingStatus, _, missingErrors) = try await CLIProcess.run(["send", "--address", broker.address, "424242", "note/x", "?"])
        #expect(missingStatus == 1 && missingErrors.contains("no connected peer"), "\(missingErrors)")
    }
}
