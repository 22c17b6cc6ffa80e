import ArgumentParser
import Herald

/// `herald ping`: checks that a broker answers and shows what it reports.
struct PingCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Check that a broker answers, and show what it says about itself and this connection.",
        discussion: """
            Connects, prints the broker's WELCOME (its name, pid and uid, this connection's peer id \
            and credentials, the limits in force) and the round-trip time of one flush, then closes. \
            With --wait, keeps retrying while no broker listens, so scripts can wait for heraldd \
            to start: `herald ping --wait 10 --quiet && …`.
            """,
        aliases: ["info"])

    @OptionGroup var connection: ConnectionOptions

    @Option(help: ArgumentHelp("Keep trying for up to SECONDS while no broker is listening.", valueName: "seconds"))
    var wait: Double = 0

    @Flag(name: [.short, .long], help: "Print nothing; only the exit status tells whether the broker answered.")
    var quiet = false

    func validate() throws {
        guard wait >= 0 else { throw ValidationError("--wait must not be negative") }
    }

    func run() async throws {
        let bus = try await connectWaiting()
        let start = ContinuousClock.now
        do {
            try await bus.flush()
        } catch {
            await bus.close()
            throw Failure.report(error)
        }
        let roundTrip = start.duration(to: .now)
        if !quiet { print(describe(bus, roundTrip: roundTrip)) }
        await bus.close()
    }

    /// Connects, retrying an unreachable broker until --wait runs out.
    private func connectWaiting() async throws -> Bus {
        do {
            return try await connection.connectRetrying(wait: wait)
        } catch {
            if quiet { throw ExitCode(Failure.status(for: error)) }
            throw Failure.report(error)
        }
    }

    private func describe(_ bus: Bus, roundTrip: Duration) -> String {
        let broker = bus.broker
        let you = broker.clientCredentials
        let microseconds = Double(roundTrip.components.seconds) * 1e6 + Double(roundTrip.components.attoseconds) / 1e12
        let rows: [(String, String)] = [
            ("broker", "\(broker.serverName) (protocol \(broker.protocolVersion))"),
            ("address", bus.address.description),
            ("broker process", "pid \(broker.pid) uid \(broker.uid)"),
            ("peer id", "\(bus.peerID)"),
            ("you", "pid \(you.pid) uid \(you.uid) gid \(you.gid)"),
            ("max frame size", "\(broker.maxFrameSize) bytes"),
            ("max topic length", "\(broker.maxTopicLength) bytes"),
            ("max subscriptions", "\(broker.maxSubscriptions)"),
            ("output limit", "\(broker.outputLimit) bytes (slow consumer: \(broker.slowConsumerPolicy))"),
            ("round trip", microseconds < 1000 ? "\(Int(microseconds)) µs" : "\(Int(microseconds / 1000)) ms"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0 + String(repeating: " ", count: width - $0.0.count) + "  " + $0.1 }.joined(separator: "\n")
    }
}
