import Herald
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A worker's side of the pipes to `herald bench`: commands arrive on stdin, read by a
/// thread of their own so no task ever blocks in read(); reports go out on stdout as JSON
/// lines. When stdin ends (the parent is gone) or says `quit`, the worker exits at once.
final class WorkerChannel: Sendable {
    private struct State {
        var go = false
        var goWaiters: [CheckedContinuation<Void, Never>] = []
        var doneAt: UInt64?
        var doneHandlers: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())
    private let writer = Mutex(Output(fd: 1))
    /// Messages sent or received, or round trips, so far; reported a few times a second.
    let progress = Atomic<UInt64>(0)

    private init() {}

    /// Starts reading commands.
    static func start() -> WorkerChannel {
        let channel = WorkerChannel()
        startThread { [channel] in channel.readCommands() }
        return channel
    }

    private func readCommands() {
        var lines = LineReader(fd: 0)
        while let line = lines.next() {
            guard let message = BenchJSON.decode(ParentMessage.self, from: line) else { continue }
            switch message.command {
            case .go:
                let waiters = state.withLock { state in
                    state.go = true
                    defer { state.goWaiters = [] }
                    return state.goWaiters
                }
                for waiter in waiters { waiter.resume() }
            case .done:
                let handlers = state.withLock { state in
                    if state.doneAt == nil { state.doneAt = monotonicNanos() }
                    defer { state.doneHandlers = [] }
                    return state.doneHandlers
                }
                for handler in handlers { handler() }
            case .quit:
                _exit(0)
            }
        }
        // The parent closed the pipe or died: nobody will read our results.
        _exit(1)
    }

    /// Sends one report line.
    func send(_ message: WorkerMessage) {
        let line = BenchJSON.line(message)
        writer.withLock { _ = $0.write(line) }
    }

    /// Reports that it failed and why.
    func fail(_ reason: String) {
        var message = WorkerMessage(event: .failed)
        message.error = reason
        send(message)
    }

    /// Suspends until the parent says `go`.
    func waitForGo() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let started = state.withLock { state in
                if state.go { return true }
                state.goWaiters.append(continuation)
                return false
            }
            if started { continuation.resume() }
        }
    }

    /// When the parent said every publisher was done (CLOCK_MONOTONIC ns), if it has.
    var publishersDoneAt: UInt64? { state.withLock { $0.doneAt } }

    /// Runs `handler` (on the control thread) when the parent says `done`, or now if it already has.
    func onDone(_ handler: @escaping @Sendable () -> Void) {
        let already = state.withLock { state in
            if state.doneAt != nil { return true }
            state.doneHandlers.append(handler)
            return false
        }
        if already { handler() }
    }

    /// Sends `progress` every 250 ms while it moves, until the returned task is cancelled.
    func reportProgress() -> Task<Void, Never> {
        Task { [self] in
            var reported: UInt64 = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                let count = progress.load(ordering: .relaxed)
                guard count != reported else { continue }
                reported = count
                var message = WorkerMessage(event: .progress)
                message.count = count
                send(message)
            }
        }
    }
}

extension WorkerChannel {
    /// Cancels `subscription` (so the loop waiting on it ends) once ``progress`` has not
    /// moved for `stallNanos`: a worker whose messages stopped coming reports a failure
    /// instead of hanging. Polls from its own task, so the measured loop pays nothing.
    func cancelWhenStalled(_ subscription: Subscription, stallNanos: UInt64) -> Task<Void, Never> {
        Task {
            var seen = progress.load(ordering: .relaxed)
            var lastChange = monotonicNanos()
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                let now = monotonicNanos()
                let count = progress.load(ordering: .relaxed)
                if count != seen {
                    seen = count
                    lastChange = now
                } else if now - lastChange > stallNanos {
                    await subscription.cancel()
                    return
                }
            }
        }
    }
}
