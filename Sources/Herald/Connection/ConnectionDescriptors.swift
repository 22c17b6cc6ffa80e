import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Queuing frames that pass file descriptors (PROTOCOL.md §4.22).
extension Connection {
    /// Descriptors the outgoing buffer may hold before a publisher waits for the I/O thread
    /// (one buffer being filled; about as many more may be in the one being written). Frames
    /// that pass descriptors are small, so the byte limit alone would let a loop queue
    /// descriptors until this process runs out.
    static let maxQueuedDescriptors = 256

    /// Whether `count` more descriptors fit in the outgoing buffer now.
    func hasRoomForDescriptors(_ count: Int) -> Bool {
        out.withLock { $0.buffer.unsentDescriptorCount + count <= Connection.maxQueuedDescriptors || $0.buffer.isEmpty }
    }

    /// Appends a frame that passes `descriptors`. On `.queued` the buffer owns them (and
    /// closes them once sent); otherwise they are still the caller's.
    ///
    /// Frames that pass descriptors are not kept while reconnecting (the descriptors would be
    /// held for an unknown time, and the new session may refuse them): they fail at once.
    func enqueue(_ frame: [UInt8], passing descriptors: [Int32]) -> PublishAttempt {
        let limit = publishBufferLimit
        let (attempt, wake) = out.withLock { state -> (PublishAttempt, Bool) in
            if let rejection = state.rejection { return (.failed(rejection), false) }
            if state.reconnecting != nil {
                return (.failed(.connectionLost("not connected to the broker (reconnecting): file descriptors are not buffered")), false)
            }
            if !state.buffer.isEmpty
                && (state.buffer.count + frame.count > limit
                    || state.buffer.unsentDescriptorCount + descriptors.count > Connection.maxQueuedDescriptors)
            {
                return (.full, false)
            }
            state.buffer.append(frame, passing: descriptors)
            let wake = state.ioIdle
            state.ioIdle = false
            return (.queued, wake)
        }
        if wake { wakeIO() }
        return attempt
    }
}
