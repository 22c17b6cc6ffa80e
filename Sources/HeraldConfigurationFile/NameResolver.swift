#if canImport(Glibc)
import Glibc
#endif

/// Turns user and group names into ids (and back, for messages). The configuration file
/// resolves every name once, when it is loaded; tests pass a table instead of the system's.
public protocol NameResolver {
    /// The uid of user `name`, or nil if there is no such user.
    func userID(named name: String) -> UInt32?
    /// The gid of group `name`, or nil if there is no such group.
    func groupID(named name: String) -> UInt32?
    /// The name of user `uid`, if it has one.
    func userName(of uid: UInt32) -> String?
    /// The name of group `gid`, if it has one.
    func groupName(of gid: UInt32) -> String?
}

/// The system's user and group databases (NSS: /etc/passwd, /etc/group, systemd-userdb…),
/// through the reentrant getpwnam_r/getgrnam_r family.
public struct SystemNameResolver: NameResolver {
    /// Creates a resolver.
    public init() {}

    public func userID(named name: String) -> UInt32? {
        lookUp { entry, buffer, size, result in getpwnam_r(name, entry, buffer, size, result) } map: { $0.pw_uid }
    }

    public func groupID(named name: String) -> UInt32? {
        lookUp { entry, buffer, size, result in getgrnam_r(name, entry, buffer, size, result) } map: { $0.gr_gid }
    }

    public func userName(of uid: UInt32) -> String? {
        lookUp { entry, buffer, size, result in getpwuid_r(uid, entry, buffer, size, result) } map: { String(cString: $0.pw_name) }
    }

    public func groupName(of gid: UInt32) -> String? {
        lookUp { entry, buffer, size, result in getgrgid_r(gid, entry, buffer, size, result) } map: { String(cString: $0.gr_name) }
    }

    /// Calls a `get*_r` function with a buffer that grows on ERANGE.
    private func lookUp<Entry, Value>(
        _ call: (UnsafeMutablePointer<Entry>, UnsafeMutablePointer<CChar>, Int, UnsafeMutablePointer<UnsafeMutablePointer<Entry>?>) -> Int32,
        map: (Entry) -> Value
    ) -> Value? {
        var size = 1024
        while size <= 1 << 20 {
            let entry = UnsafeMutablePointer<Entry>.allocate(capacity: 1)
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: size)
            defer {
                entry.deallocate()
                buffer.deallocate()
            }
            var result: UnsafeMutablePointer<Entry>?
            let status = call(entry, buffer, size, &result)
            if status == ERANGE {
                size *= 4
                continue
            }
            guard status == 0, let found = result else { return nil }
            return map(found.pointee)
        }
        return nil
    }
}
