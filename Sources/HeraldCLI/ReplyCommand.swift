import ArgumentParser
import Foundation
import Herald
import Synchronization

/// `herald reply TOPIC (--exec CMD | --answer TEXT)`: answers requests from a shell.
struct ReplyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reply",
        abstract: "Answer requests on a topic filter, with a fixed text or a command's output.",
        discussion: """
            Serves FILTER as a responder: every request sent on a matching topic ('herald req', or \
            Bus.request in a program) is answered, one at a time, in order. With --answer, the answer is \
            TEXT. With --exec, CMD runs under /bin/sh for each request with the request on its standard \
            input and HERALD_TOPIC, HERALD_SENDER_PID, HERALD_SENDER_UID and HERALD_SENDER_GID in its \
            environment; its standard output is the answer, and if it exits non-zero the request fails \
            with its exit status as the code and its standard error as the message. Prints \
            "herald: answering requests on 'FILTER'" on standard error once the broker has confirmed; \
            exits after --count requests, or on SIGINT/SIGTERM.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "The topic filter to answer, e.g. settings/get or settings/#.")
    var filter: String

    @Option(name: .customLong("exec"), help: ArgumentHelp("Run this shell command for each request; its output is the answer.", valueName: "command"))
    var command: String?

    @Option(help: ArgumentHelp("Answer every request with this text.", valueName: "text"))
    var answer: String?

    @Option(help: ArgumentHelp("Exit after answering this many requests.", valueName: "N"))
    var count: Int?

    func validate() throws {
        guard (command == nil) != (answer == nil) else { throw ValidationError("give exactly one of --exec and --answer") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        // A command that exits without reading its input must not take this process with it:
        // writing the request to its closed pipe fails with EPIPE instead of raising SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let bus = try await connection.connect()
        let requests: IncomingRequests
        do {
            requests = try await bus.requests(on: filter)
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        StandardError.line("herald: answering requests on '\(filter)'")
        let interrupted = Atomic<Bool>(false)
        let signals = SignalWatcher(signals: [SIGINT, SIGTERM]) {
            if interrupted.exchange(true, ordering: .relaxed) { _exit(130) }
            Task { await bus.close() }
        }
        defer { signals.cancel() }
        let events = bus.events()
        let eventTask = Task {
            for await event in events {
                if case .replyRefused(let reason) = event { StandardError.line("herald: an answer was not delivered: \(reason)") }
            }
        }
        defer { eventTask.cancel() }

        var answered = 0
        do {
            for try await request in requests {
                if let answer {
                    try await request.respond(answer)
                } else if let command {
                    let outcome = ShellCommand.run(command, input: request.payload, environment: [
                        "HERALD_TOPIC": request.topic, "HERALD_SENDER_PID": "\(request.sender.pid)",
                        "HERALD_SENDER_UID": "\(request.sender.uid)", "HERALD_SENDER_GID": "\(request.sender.gid)",
                    ])
                    if outcome.status == 0 {
                        try await request.respond(outcome.output)
                    } else {
                        let why = String(decoding: outcome.errorOutput, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                        try await request.fail(code: UInt32(clamping: max(1, outcome.status)),
                            why.isEmpty ? "'\(command)' exited with status \(outcome.status)" : why)
                    }
                }
                answered += 1
                if let count, answered >= count { break }
            }
        } catch {
            if interrupted.load(ordering: .relaxed) { return }
            await bus.close()
            throw Failure.report(error)
        }
        // Answers are buffered like publishes: make sure the broker has them before leaving.
        try? await bus.flush(timeout: .seconds(5))
        await bus.close()
        if count == nil && !interrupted.load(ordering: .relaxed) {
            let reason = bus.disconnectReason ?? .connectionClosed(reason: "the responder subscription ended")
            throw Failure.report(reason)
        }
    }
}

/// A shell command run for one request: its input written, its output and status collected.
enum ShellCommand {
    struct Outcome {
        var status: Int32
        var output: [UInt8]
        var errorOutput: [UInt8]
    }

    /// Runs `/bin/sh -c command` with `input` on its standard input and `environment` added.
    static func run(_ command: String, input: [UInt8], environment: [String: String]) -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command]
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        let stdin = Pipe()
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do {
            try process.run()
        } catch {
            return Outcome(status: 127, output: [], errorOutput: Array("cannot run /bin/sh: \(error)".utf8))
        }
        // Input on a thread of its own, so a command that writes before reading cannot block both sides.
        let writer = Thread {
            try? stdin.fileHandleForWriting.write(contentsOf: Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let errorData = Mutex<Data>(Data())
        let errorReader = Thread {
            let data = stderr.fileHandleForReading.readDataToEndOfFile()
            errorData.withLock { $0 = data }
        }
        errorReader.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        // The error reader ends at end of file, which the exit has made certain.
        while errorReader.isExecuting || !errorReader.isFinished { usleep(1_000) }
        let status = process.terminationReason == .exit ? process.terminationStatus : 128 + process.terminationStatus
        return Outcome(status: status, output: Array(output), errorOutput: Array(errorData.withLock { $0 }))
    }
}
