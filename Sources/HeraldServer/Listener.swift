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

    /// Adopts a listening socket another process bound (systemd socket activation): makes it
    /// nonblocking and reads its address for the logs. The socket file, if any, belongs to
    /// whoever created it: this process never unlinks it.
    public init(adopting fd: Int32) throws(ListenerError) {
        var name = [CChar](repeating: 0, count: 128)
        var abstract: Int32 = 0
        let length = herald_unix_socket_name(fd, &name, name.count, &abstract)
        guard length >= 0 else { throw .system("reading the address of descriptor \(fd)", errno: herald_errno()) }
        guard herald_set_nonblocking(fd, 1) == 0 else { throw .system("making descriptor \(fd) nonblocking", errno: herald_errno()) }
        let text = String(decoding: name[..<Int(length)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.fd = fd
        self.address = BusAddress(abstract != 0 ? "@" + text : text)
        self.ownsPath = false
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
