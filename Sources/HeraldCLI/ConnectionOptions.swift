import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// The options every command shares: where the broker is.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Broker address: '@name' (abstract socket) or a socket path. Default: $HERALD_ADDRESS, else @herald/<uid>.",
            valueName: "address"))
    var address: String?

    @Option(
        name: .customLong("trust-uid"),
        help: ArgumentHelp(
            "Also accept a broker running as this uid (by default only one running as you or as root). Repeatable.",
            valueName: "uid"))
    var trustUID: [UInt32] = []

    /// Connects, or prints why not and exits with status 2 (or 1 for a bad address). With
    /// `wait` seconds, keeps retrying while no broker listens (a broker that is starting or
    /// restarting).
    func connect(options: BusOptions = BusOptions(), wait: Double = 0) async throws -> Bus {
        do {
            return try await connectRetrying(options: options, wait: wait)
        } catch {
            throw Failure.report(error)
        }
    }

    /// Connects, retrying an unreachable broker every 50 ms until `wait` seconds have passed;
    /// throws the last error.
    func connectRetrying(options: BusOptions = BusOptions(), wait: Double) async throws(HeraldError) -> Bus {
        var options = options
        if !trustUID.isEmpty { options.brokerTrust = .users(Set(trustUID + [getuid(), 0])) }
        let deadline = ContinuousClock.now + .milliseconds(Int(wait * 1000))
        while true {
            do {
                return try await Bus.connect(to: address, options: options)
            } catch {
                guard case .brokerUnreachable = error, ContinuousClock.now < deadline else { throw error }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
    }
}
