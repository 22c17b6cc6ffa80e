import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Reading the socket into the read buffer (which grows only for a frame larger than it).
extension IOLoop {
    /// Reads what the socket holds and handles every complete frame. `draining`: the peer
    /// hung up, so read to the end regardless of the pause.
    func readAvailable(draining: Bool) {
        var reads = 0
        while !finished && (draining || reads < IOLoop.readsPerEvent) {
            reads += 1
            if readEnd == readCapacity { makeRoom(for: readEnd - readStart + 1) }
            let space = readCapacity - readEnd
            var n: Int
            var broughtDescriptors = false
            if acceptsDescriptors {
                (n, broughtDescriptors) = receive(into: readBuffer + readEnd, space)
            } else {
                n = read(socket, readBuffer + readEnd, space)
            }
            if n > 0 {
                readEnd += n
                parseFrames()
                // A read that brought descriptors ends there whatever follows: not drained.
                if n < space && !draining && !broughtDescriptors { return }
                if isPaused && !draining { return }
                continue
            }
            if n == 0 {
                if closeDeadline != nil {
                    finish(reason: nil, failSubscriptions: false)
                } else {
                    finish(reason: .connectionClosed(reason: "it went away without saying goodbye"),
                        failSubscriptions: true)
                }
                return
            }
            let error = herald_errno()
            switch error {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                return
            default:
                // While closing, a broken connection is as good as the broker's GOODBYE.
                finish(
                    reason: closeDeadline == nil ? .connectionLost("cannot read from the broker: \(systemErrorDescription(error))") : nil,
                    failSubscriptions: true)
                return
            }
        }
    }

    /// Moves unparsed bytes to the front, and grows the buffer if `length` bytes (a whole
    /// frame, or the unparsed bytes plus one) would not fit.
    func makeRoom(for length: Int) {
        let pending = readEnd - readStart
        if length > readCapacity {
            readStorage.grow(toAtLeast: length, keeping: readStart..<readEnd)
            readBuffer = readStorage.base.unsafelyUnwrapped
            readCapacity = readStorage.capacity
        } else {
            readStorage.compact(readStart..<readEnd)
        }
        readStart = 0
        readEnd = pending
    }
}
