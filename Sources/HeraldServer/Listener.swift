import CHeraldSys
import HeraldProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Why a listening socket could not be set up.
public enum ListenerError: Error, CustomStringConvertible {
    /// The address is not a usable Unix socket name.
    case invalidAddress(String)
    /// Another process already listens on the address.
    case addressInUse(String)
    /// A file that is not a socket sits at the path.
    case pathOccupied(String)
    /// A system call failed.
    case system(String, errno: Int32)

    public var description: String {
        switch self {
        case .invalidAddress(let address):
            "'\(address)' is not a valid bus address (1 to \(BusAddress.maxNameLength) bytes)"
        case .addressInUse(let address): "another process is already listening on \(address)"
        case .pathOccupied(let path): "\(path) exists and is not a socket; refusing to replace it"
        case .system(let what, let code): "\(what) failed: \(String(cString: strerror(code)))"
        }
    }
}

/// A nonblocking listening AF_UNIX stream socket on an abstract name or a filesystem path.
public final class Listener {
    /// The socket.
    public let fd: Int32
    /// Where it listens.
    public let address: BusAddress
    /// Whether this process created the socket file (and so removes it at exit).
    private let ownsPath: Bool

    /// Binds and listens on `address`. A stale socket file (nothing listening) is replaced;
    /// a live one or a non-socket file is an error.
    public init(address: BusAddress, backlog: Int32 = 4096) throws(ListenerError) {
        guard address.isValid else { throw .invalidAddress(address.description) }
        let fd = herald_unix_stream_socket(1)
        guard fd >= 0 else { throw .system("socket", errno: herald_errno()) }
        var ownsPath = false
        do throws(ListenerError) {
            if !address.isAbstract { try Listener.clearStaleSocket(at: address.name) }
            let bound = address.name.withCString { herald_unix_bind(fd, $0, strlen($0), address.isAbstract ? 1 : 0) }
            if bound != 0 {
                let code = herald_errno()
                throw code == EADDRINUSE ? .addressInUse(address.description) : .system("bind \(address)", errno: code)
            }
            ownsPath = !address.isAbstract
            guard listen(fd, backlog) == 0 else { throw .system("listen", errno: herald_errno()) }
        } catch {
            Glibc.close(fd)
            if ownsPath { unlink(address.name) }
            throw error
        }
        self.fd = fd
        self.address = address
        self.ownsPath = ownsPath
    }

    /// Closes the socket and removes a socket file this process created.
    public func close() {
        Glibc.close(fd)
        if ownsPath { unlink(address.name) }
    }

    private static func clearStaleSocket(at path: String) throws(ListenerError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .pathOccupied(path) }
        switch herald_unix_path_is_live(path) {
        case 1: throw .addressInUse(path)
        case 0: unlink(path)
        default: throw .system("probing \(path)", errno: herald_errno())
        }
    }
}
