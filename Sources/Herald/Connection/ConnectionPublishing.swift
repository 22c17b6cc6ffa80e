import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Publishing: the hot path takes one lock (`out`) per message and wakes the I/O thread
/// only when it may be asleep.
extension Connection {
    /// Validates and appends one PUBLISH frame under one lock acquisition.
    @inline(__always)
    func tryPublish(
        topic: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer, flags: UInt8 = 0, maxTopicLength: Int, maxFrameSize: Int
    ) -> PublishAttempt {
        let frameLength = FrameHeader.size + topic.count + payload.count
        guard frameLength <= maxFrameSize else { return .failed(.messageTooLarge(size: frameLength, maximum: maxFrameSize)) }
        let limit = publishBufferLimit
        let (attempt, wake) = out.withLock { state -> (PublishAttempt, Bool) in
            if let rejection = state.rejection { return (.failed(rejection), false) }
            let known =
                !topic.isEmpty && state.lastTopic.count == topic.count
                && state.lastTopic.withUnsafeBytes { ByteComparison.equal($0.baseAddress!, topic.baseAddress!, count: topic.count) }
            if !known {
                if let error = Topic.validatePublishable(topic, maxLength: maxTopicLength) {
                    return (.failed(.invalidTopic(String(decoding: topic, as: UTF8.self), reason: "it \(error)")), false)
                }
                state.lastTopic.removeAll(keepingCapacity: true)
                state.lastTopic.append(contentsOf: topic)
            }
            if let policy = state.reconnecting {
                // No broker to write to: the reconnect policy decides, never a wait.
                switch policy {
                case .fail:
                    return (.failed(.connectionLost("not connected to the broker (reconnecting; publishing then is set to fail)")), false)
                case .buffer(let bound) where state.buffer.count + frameLength > bound:
                    return (.failed(.connectionLost("not connected to the broker, and \(bound) bytes are already buffered while reconnecting")), false)
                case .buffer:
                    break
                }
            } else if state.buffer.count + frameLength > limit && !state.buffer.isEmpty {
                return (.full, false)
            }
            state.buffer.appendPublish(topic: topic, payload: payload, flags: flags)
            let wake = state.ioIdle
            state.ioIdle = false
            return (.queued, wake)
        }
        if wake { wakeIO() }
        return attempt
    }

    /// Suspends until the I/O thread has taken the outgoing buffer (or the connection ended).
    func waitForPublishSpace() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = out.withLock { state in
                if state.rejection != nil || state.buffer.isEmpty { return true }
                state.spaceWaiters.append(continuation)
                return false
            }
            if ready { continuation.resume() }
        }
    }

    /// Appends encoded frames. Returns why not if the connection accepts no more frames.
    @discardableResult
    func enqueue(_ bytes: [UInt8]) -> HeraldError? {
        let (rejection, wake) = out.withLock { state -> (HeraldError?, Bool) in
            if let rejection = state.rejection { return (rejection, false) }
            state.buffer.append(bytes)
            let wake = state.ioIdle
            state.ioIdle = false
            return (nil, wake)
        }
        if wake { wakeIO() }
        return rejection
    }
}
