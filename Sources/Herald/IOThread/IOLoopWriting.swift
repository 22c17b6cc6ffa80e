import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Writing: the frames tasks queued go out until the socket is full; EPOLLOUT is asked
/// for only then.
extension IOLoop {
    /// Writes queued frames until the socket is full or nothing is left.
    func flushOutput() {
        while !finished {
            if writeOffset == writing.count {
                writing.removeAll()
                writeOffset = 0
                guard connection.takeOutgoing(into: &writing) else { return }
            }
            if waitingForWritable { return }
            let n: Int
            if let mark = writing.nextMark {
                n = writeWithDescriptors(mark)
            } else {
                n = send(socket, writing.bytes + writeOffset, writing.count - writeOffset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n >= 0 {
                writeOffset += n
                continue
            }
            let error = herald_errno()
            switch error {
            case EINTR:
                continue
            case EAGAIN, EWOULDBLOCK:
                waitingForWritable = true
                return
            default:
                // The broker is gone. Read what it sent last (a fatal ERROR or GOODBYE says why).
                readAvailable(draining: true)
                if !finished {
                    finish(
                        reason: closeDeadline == nil ? .connectionLost("cannot write to the broker: \(systemErrorDescription(error))") : nil,
                        failSubscriptions: true)
                }
                return
            }
        }
    }

    /// Writes while a frame that passes descriptors is queued: plain bytes up to it, then
    /// (once it is next) its descriptors as one SCM_RIGHTS message with its first byte and
    /// data up to the next such frame (PROTOCOL.md §4.22). Returns what `send` would.
    private func writeWithDescriptors(_ mark: DescriptorMark) -> Int {
        guard writeOffset == mark.offset else {
            return send(socket, writing.bytes + writeOffset, mark.offset - writeOffset, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        }
        let end = writing.endOfNextMarkSend
        let n = mark.descriptors.withUnsafeBufferPointer {
            herald_send_with_fds_nowait(socket, writing.bytes + writeOffset, end - writeOffset, $0.baseAddress, Int32($0.count))
        }
        if n > 0 { writing.nextMarkSent() }
        return n
    }
}
