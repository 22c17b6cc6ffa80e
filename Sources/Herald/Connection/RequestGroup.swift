import Synchronization

/// Collects the answers to several requests (one SUBSCRIBE or UNSUBSCRIBE per filter) and
/// reports once: success when all succeeded, or the first failure.
final class RequestGroup: Sendable {
    private let remaining: Mutex<Int?>
    private let completion: Connection.Completion

    init(count: Int, completion: @escaping Connection.Completion) {
        remaining = Mutex(count)
        self.completion = completion
        if count == 0 { complete(.success(())) }
    }

    /// Records one answer.
    func complete(_ result: Result<Void, HeraldError>) {
        let fire = remaining.withLock { remaining -> Bool in
            guard let count = remaining else { return false }
            if case .failure = result {
                remaining = nil
                return true
            }
            remaining = count - 1
            if count - 1 <= 0 {
                remaining = nil
                return true
            }
            return false
        }
        if fire { completion(result) }
    }

    /// Counts `count` requests that were never sent as succeeded.
    func skip(_ count: Int) {
        for _ in 0..<max(0, count) { complete(.success(())) }
    }
}
