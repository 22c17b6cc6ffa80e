import HeraldCore

/// The server's side of each connection, by the core's ``PeerSlot``: the socket and whether
/// epoll watches it for writability. The core knows neither (it does no I/O).
struct SocketTable {
    /// One connection's socket state.
    struct Socket {
        /// The connected socket, or -1 for a vacant slot.
        var fd: Int32 = -1
        /// Whether EPOLLOUT is armed because the socket was full. Fast consumers never need it,
        /// so it is asked for only when a write meets EAGAIN.
        var waitingForWritable = false
        /// A pidfd for the process that connected (-1 if the kernel gave none): watched by
        /// epoll, it reports the process's exit even if the connection lives on elsewhere.
        var pidfd: Int32 = -1
    }

    private var sockets: [Socket] = []

    /// The socket in `slot` (a vacant one reads as fd -1; writing grows the table).
    subscript(slot: PeerSlot) -> Socket {
        get { Int(slot) < sockets.count ? sockets[Int(slot)] : Socket() }
        set {
            if Int(slot) >= sockets.count { sockets.append(contentsOf: repeatElement(Socket(), count: Int(slot) + 1 - sockets.count)) }
            sockets[Int(slot)] = newValue
        }
    }
}
