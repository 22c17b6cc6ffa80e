import Foundation
import Herald
import Testing

/// Request/reply end to end: the library and the CLI against a real heraldd.
@Suite("Request/reply end to end", .timeLimit(.minutes(1)))
struct RequestIntegrationTests {
    /// Serves `filter` on its own bus, answering with `answer(request)` (nil: never answers).
    static func serve(
        _ address: String, _ filter: String, name: String = "responder", answer: @escaping @Sendable (IncomingRequest) -> String?
    ) async throws -> (Bus, Task<Void, Error>) {
        let bus = try await Bus.connect(to: address, options: BusOptions(clientName: name))
        let requests = try await bus.requests(on: filter)
        let task = Task {
            for try await request in requests {
                if let text = answer(request) { try await request.respond(text) }
            }
        }
        return (bus, task)
    }

    @Test func aRequestIsAnsweredByTheResponderWithItsIdentity() async throws {
        let broker = try await BrokerProcess()
        let (responder, serving) = try await Self.serve(broker.address, "settings/+") { request in
            "\(request.topic)=\(request.string ?? "")!"
        }
        defer { serving.cancel(); Task { await responder.close() } }
        let client = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "client"))
        defer { Task { await client.close() } }

        let reply = try await client.request("settings/theme", "dark", timeout: .seconds(5))
        #expect(reply.string == "settings/theme=dark!")
        #expect(reply.topic == "settings/theme")
        #expect(reply.sender.peerID == responder.peerID && reply.sender.pid == UInt32(getpid()) && reply.sender.uid == UInt32(getuid()))

        // Many at once on one connection: each answer reaches the request it belongs to.
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for index in 0..<50 {
                group.addTask { (index, try await client.request("settings/n\(index)", "\(index)").string) }
            }
            var answers: [Int: String?] = [:]
            for try await (index, answer) in group { answers[index] = answer }
            return answers
        }
        #expect(answers.count == 50)
        #expect(answers.allSatisfy { index, answer in answer == "settings/n\(index)=\(index)!" })
    }

    @Test func everyUnansweredRequestFailsWithItsOwnReasonAndNotByTimingOut() async throws {
        let broker = try await BrokerProcess()
        let client = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "client"))
        defer { Task { await client.close() } }

        // Nobody serves the topic: answered at once, long before the timeout.
        let started = ContinuousClock.now
        do {
            _ = try await client.request("nobody/home", "?", timeout: .seconds(30))
            Issue.record("a request nobody serves returned")
        } catch {
            guard case .noResponders = error else { Issue.record("expected noResponders, got \(error)"); return }
        }
        #expect(ContinuousClock.now - started < .seconds(10))

        // The responder fails it: the requester sees the responder's code and message.
        let failing = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "failing"))
        let failRequests = try await failing.requests(on: "strict/#")
        let failer = Task { for try await request in failRequests { try await request.fail(code: 404, "no setting '\(request.topic)'") } }
        defer { failer.cancel(); Task { await failing.close() } }
        do {
            _ = try await client.request("strict/x", "")
            Issue.record("a failed request returned")
        } catch {
            #expect(error == .requestFailed(code: 404, message: "no setting 'strict/x'"))
        }

        // The responder takes the request and leaves without answering: failed at once.
        let leaving = try await Bus.connect(to: broker.address, options: BusOptions(clientName: "leaving"))
        let leaveRequests = try await leaving.requests(on: "flaky/#")
        let leaver = Task {
            for try await _ in leaveRequests {
                await leaving.close()
                return
            }
        }
        defer { leaver.cancel() }
        do {
            _ = try await client.request("flaky/x", "", timeout: .seconds(30))
            Issue.record("a request to a departed responder returned")
        } catch {
            guard case .responderGone = error else { Issue.record("expected responderGone, got \(error)"); return }
        }

        // A responder that never answers: the requester's timeout.
        let (silent, silence) = try await Self.serve(broker.address, "silent/#") { _ in nil }
        defer { silence.cancel(); Task { await silent.close() } }
        do {
            _ = try await client.request("silent/x", "", timeout: .milliseconds(300))
            Issue.record("an unanswered request returned")
        } catch {
            #expect(error == .timeout)
        }
        #expect(client.isConnected, "none of these harms the connection")
    }

    @Test func theCLIAsksAndAnswers() async throws {
        let broker = try await BrokerProcess()
        let responder = try CLIProcess([
            "reply", "--address", broker.address, "settings/+", "--count", "2",
            "--exec", "if [ \"$HERALD_TOPIC\" = settings/bad ]; then echo 'no such thing' >&2; exit 3; fi; tr a-z A-Z",
        ])
        #expect(await responder.waitForStandardError { $0.contains("answering requests on 'settings/+'") }, "\(responder.standardError)")

        let (status, output, errors) = try await CLIProcess.run(["req", "--address", broker.address, "settings/theme", "dark"])
        #expect(status == 0, "\(errors)")
        #expect(output == "DARK\n")
        let (failedStatus, _, failedErrors) = try await CLIProcess.run(["req", "--address", broker.address, "settings/bad", "x"])
        #expect(failedStatus == 1 && failedErrors.contains("code 3") && failedErrors.contains("no such thing"), "\(failedErrors)")
        #expect(await responder.waitForExit() == 0, "it exits after --count answers: \(responder.standardError)")

        let (noneStatus, _, noneErrors) = try await CLIProcess.run(["req", "--address", broker.address, "settings/theme", "dark"])
        #expect(noneStatus == 4 && noneErrors.contains("no responder"), "\(noneErrors)")
    }
}
