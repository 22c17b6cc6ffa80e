import Herald

#if canImport(Glibc)
import Glibc
#endif

/// A private heraldd that `herald bench --spawn-broker` starts for one workload, on an
/// abstract address nobody else uses, and stops with SIGTERM afterwards.
final class SpawnedBroker {
    let executable: String
    let address: String
    let process: ChildProcess

    private init(executable: String, address: String, process: ChildProcess) {
        self.executable = executable
        self.address = address
        self.process = process
    }

    /// heraldd next to this herald binary (a `swift build` puts both in one folder), else on $PATH.
    static func locateExecutable() -> String? {
        let own = currentExecutablePath()
        if let slash = own.lastIndex(of: "/") {
            let sibling = String(own[..<slash]) + "/heraldd"
            if access(sibling, X_OK) == 0 { return sibling }
        }
        guard let path = getenv("PATH").map({ String(cString: $0) }) else { return nil }
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = String(directory) + "/heraldd"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Starts heraldd on `address` and waits until it answers a connection (it listens before
    /// it reports ready, so retrying connect is all the readiness check needed).
    static func start(
        executable: String, address: String, arguments: [String] = [], scheduling: ChildScheduling? = nil
    ) async throws(BenchError) -> SpawnedBroker {
        // Errors only: its notices and slow-consumer warnings would break up the progress line
        // (the report counts drops and disconnects itself).
        let process = try ChildProcess.spawn(executable, ["--address", address, "--log-level", "error"] + arguments, pipes: false, scheduling: scheduling)
        let broker = SpawnedBroker(executable: executable, address: address, process: process)
        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            if let status = process.poll() {
                throw BenchError("\(executable) exited at start (wait status \(status)); see its messages above")
            }
            do {
                let bus = try await Bus.connect(to: address, options: BusOptions(connectTimeout: .seconds(2)))
                await bus.close()
                return broker
            } catch {
                guard ContinuousClock.now < deadline else {
                    broker.stop()
                    throw BenchError("\(executable) did not answer on \(address) within 10 s: \(error)")
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    /// SIGTERM, then up to 5 s for a clean stop (heraldd flushes and says GOODBYE), then SIGKILL.
    func stop() {
        process.kill(SIGTERM)
        process.finish(within: .seconds(5))
    }
}
