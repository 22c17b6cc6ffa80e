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

    /// Whether a frame of `frameLength` bytes passing `count` descriptors fits in the
    /// outgoing buffer now (as ``enqueue(_:passing:)`` will decide, if nothing is added first).
    func hasRoom(forFrameOf frameLength: Int, passing count: Int) -> Bool {
        let limit = publishBufferLimit
        return out.withLock {
            $0.buffer.hasRoom(forFrameOf: frameLength, passing: count, byteLimit: limit, descriptorLimit: Connection.maxQueuedDescriptors)
        }
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
            guard
                state.buffer.hasRoom(
                    forFrameOf: frame.count, passing: descriptors.count, byteLimit: limit, descriptorLimit: Connection.maxQueuedDescriptors)
            else { return (.full, false) }
            state.buffer.append(frame, passing: descriptors)
            let wake = state.ioIdle
            state.ioIdle = false
            return (.queued, wake)
        }
        if wake { wakeIO() }
        return attempt
    }
}
