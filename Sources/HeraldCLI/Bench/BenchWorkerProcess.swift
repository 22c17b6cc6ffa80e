/// One worker process as the parent sees it.
final class BenchWorkerProcess {
    let role: BenchWorkerCommand.Role
    let index: Int
    let process: ChildProcess
    private var pending: [UInt8] = []
    /// Whether its stdout has ended.
    private(set) var ended = false
    private(set) var ready: WorkerMessage?
    private(set) var result: WorkerMessage?
    private(set) var failure: String?
    private(set) var progress: UInt64 = 0

    init(role: BenchWorkerCommand.Role, index: Int, process: ChildProcess) {
        self.role = role
        self.index = index
        self.process = process
    }

    var name: String { "\(role.rawValue) \(index) (pid \(process.pid))" }

    /// Reads and handles whatever it has written.
    func receive() {
        guard !ended else { return }
        guard let bytes = process.readAvailable() else {
            ended = true
            process.closeOutput()
            if result == nil && failure == nil {
                let status = process.finish(within: .seconds(1))
                failure = "exited without a result" + (status.map { " (wait status \($0))" } ?? "")
            }
            return
        }
        pending.append(contentsOf: bytes)
        while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = pending[..<newline]
            if let message = BenchJSON.decode(WorkerMessage.self, from: line) { handle(message) }
            pending.removeSubrange(...newline)
        }
    }

    private func handle(_ message: WorkerMessage) {
        switch message.event {
        case .ready: ready = message
        case .progress: progress = message.count ?? progress
        case .result: result = message
        case .failed: failure = message.error ?? "failed"
        }
    }

    func send(_ command: ParentMessage.Command) {
        process.send(BenchJSON.line(ParentMessage(command: command)))
    }
}
