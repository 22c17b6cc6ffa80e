import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Closing: close() asks the I/O thread for a bounded GOODBYE; tasks can wait for its exit.
extension Connection {
    /// Queues GOODBYE as the last frame and starts the I/O thread's bounded close. Idempotent;
    /// safe to call from a deinit.
    func requestClose() {
        let first = control.withLock { state -> Bool in
            switch state.phase {
            case .open, .reconnecting: break
            case .connecting, .closing, .ended: return false
            }
            state.phase = .closing
            return true
        }
        guard first else { return }
        let waiters = out.withLock { state -> [CheckedContinuation<Void, Never>] in
            if state.rejection == nil {
                state.buffer.append(.goodbye(Goodbye(reason: 0, message: "client closing")))
                state.rejection = .closed
            }
            state.ioIdle = false
            let waiters = state.spaceWaiters
            state.spaceWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
        closeRequested.store(true, ordering: .releasing)
        wakeIO()
    }

    /// Suspends until the I/O thread has exited (and closed the socket).
    func waitUntilExited() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let exited = control.withLock { state in
                if state.threadExited { return true }
                state.exitWaiters.append(continuation)
                return false
            }
            if exited { continuation.resume() }
        }
    }

    /// The current phase.
    var phase: Phase { control.withLock { $0.phase } }
}
