#if canImport(Glibc)
import Glibc
#endif

/// Why the broker's event loop could not start, named for what the operator has to fix.
public enum ServerError: Error, CustomStringConvertible {
    /// The kernel refused an epoll instance (out of descriptors or memory).
    case cannotCreateEventLoop(errno: Int32)
    /// SIGINT/SIGTERM could not be routed to the event loop (signalfd).
    case cannotWatchSignals(errno: Int32)
    /// A listening socket could not be added to the event loop.
    case cannotWatchListener(String, errno: Int32)

    public var description: String {
        switch self {
        case .cannotCreateEventLoop(let code):
            "cannot create the event loop: \(String(cString: strerror(code)))"
        case .cannotWatchSignals(let code):
            "cannot route SIGINT and SIGTERM to the event loop: \(String(cString: strerror(code)))"
        case .cannotWatchListener(let address, let code):
            "cannot watch the listening socket \(address): \(String(cString: strerror(code)))"
        }
    }
}
