import CSystemd
import HeraldServer
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// systemd socket activation: the listening sockets a service manager passed with
/// `LISTEN_FDS`, through libsystemd's own `sd_listen_fds_with_names` and `sd_is_socket_unix`,
/// and the descriptor heraldd left in its file-descriptor store (the retained messages,
/// named ``RetainedPersistence/descriptorName``).
enum SocketActivation {
    /// What the service manager passed.
    struct Passed {
        var listeners: [Listener] = []
        /// The retained-state memfd from the descriptor store, if any (the caller closes it).
        var retainedState: Int32?
    }

    /// A passed descriptor heraldd cannot listen on.
    struct Refusal: Error, CustomStringConvertible {
        let fd: Int32
        let name: String
        let what: String

        var description: String {
            "descriptor \(fd) (\(name)) passed by the service manager is \(what), not a listening AF_UNIX stream socket"
        }
    }

    /// The sockets passed to this process, adopted as listeners (none when not activated), and
    /// the stored retained state. The environment variables are unset, so a child process
    /// does not inherit them.
    static func passedDescriptors(logger: Logger) throws -> Passed {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else {
            if count < 0 {
                logger.warning("cannot read the sockets passed by the service manager",
                    metadata: ["error": "\(String(cString: strerror(-count)))"])
            }
            return Passed()
        }
        defer {
            for index in 0..<Int(count) { free(names?[index]) }
            free(names)
        }
        var passed = Passed()
        for index in 0..<Int(count) {
            let fd = SD_LISTEN_FDS_START + Int32(index)
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            if name == RetainedPersistence.descriptorName {
                // Ours, from an earlier run: close-on-exec like everything else heraldd holds.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                if let earlier = passed.retainedState { close(earlier) }
                passed.retainedState = fd
                continue
            }
            guard sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
                throw Refusal(fd: fd, name: name, what: describe(fd))
            }
            let listener = try Listener(adopting: fd)
            logger.notice("listening on a socket passed by the service manager",
                metadata: ["address": "\(listener.address)", "fd": "\(fd)", "name": "\(name)"])
            passed.listeners.append(listener)
        }
        return passed
    }

    /// What a descriptor is, for the refusal message.
    private static func describe(_ fd: Int32) -> String {
        if sd_is_socket_unix(fd, Int32(SOCK_STREAM.rawValue), 0, nil, 0) > 0 { return "a Unix stream socket that is not listening" }
        if sd_is_socket_unix(fd, 0, -1, nil, 0) > 0 { return "a Unix socket that is not a stream socket" }
        if sd_is_socket(fd, Int32(AF_INET), 0, -1) > 0 || sd_is_socket(fd, Int32(AF_INET6), 0, -1) > 0 { return "an IP socket" }
        if sd_is_socket(fd, Int32(AF_UNSPEC), 0, -1) > 0 { return "a socket of another family" }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return "not an open descriptor" }
        switch info.st_mode & S_IFMT {
        case S_IFREG: return "a regular file"
        case S_IFIFO: return "a pipe"
        case S_IFCHR: return "a character device"
        case S_IFDIR: return "a directory"
        default: return "not a socket"
        }
    }
}
