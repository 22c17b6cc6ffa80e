#if canImport(Glibc)
import Glibc
#endif

/// Which processes a ``Bus`` accepts as its broker, judged by the kernel's credentials of
/// the process on the other end of the socket (`SO_PEERCRED`), before anything is sent.
///
/// An abstract socket name has no owner and no permissions: any local process can bind
/// `@herald/1000` before the real broker does and collect what clients send. Checking the
/// broker's uid defeats such a squatter: by default a bus talks only to a broker running
/// as its own user or as root (a system bus; and systemd, which holds a socket-activated
/// listener, is root or the user's own manager).
public enum BrokerTrust: Sendable, Equatable {
    /// The broker runs as this process's uid or as root. The default.
    case ownUserOrRoot
    /// The broker runs as one of these uids.
    case users(Set<UInt32>)
    /// Any broker (no check): for tests or a deliberately shared bus.
    case anyone

    /// Whether a broker running as `uid` is accepted.
    func accepts(uid: UInt32) -> Bool {
        switch self {
        case .ownUserOrRoot: uid == getuid() || uid == 0
        case .users(let uids): uids.contains(uid)
        case .anyone: true
        }
    }
}
