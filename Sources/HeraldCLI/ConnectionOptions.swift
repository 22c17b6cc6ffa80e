import ArgumentParser
import Herald

/// The options every command shares: where the broker is.
struct ConnectionOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Broker address: '@name' (abstract socket) or a socket path. Default: $HERALD_ADDRESS, else @herald/<uid>.",
            valueName: "address"))
    var address: String?

    /// Connects, or prints why not and exits with status 2 (or 1 for a bad address).
    func connect(options: BusOptions = BusOptions()) async throws -> Bus {
        do {
            return try await Bus.connect(to: address, options: options)
        } catch {
            throw Failure.report(error)
        }
    }
}
