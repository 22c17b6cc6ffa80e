#if canImport(Glibc)
import Glibc
#endif

/// Where a broker listens: a Linux abstract-namespace name (written `@name`) or a
/// filesystem path (anything else).
public struct BusAddress: Hashable, Sendable, CustomStringConvertible {
    /// Environment variable that overrides the default address.
    public static let environmentVariable = "HERALD_ADDRESS"

    /// The name without the `@` (abstract) or the path (filesystem).
    public let name: String
    /// Whether the name lives in the abstract namespace.
    public let isAbstract: Bool

    /// Parses `@name` as abstract and anything else as a path.
    public init(_ text: String) {
        if text.hasPrefix("@") {
            name = String(text.dropFirst())
            isAbstract = true
        } else {
            name = text
            isAbstract = false
        }
    }

    /// The address as written: `@name` or the path.
    public var description: String { isAbstract ? "@" + name : name }

    /// The per-user default, `@herald/<uid>`, so two users' brokers never collide.
    public static func userDefault(uid: UInt32) -> BusAddress { BusAddress("@herald/\(uid)") }

    /// The address a client or broker uses: `explicit` if given, else `$HERALD_ADDRESS`,
    /// else ``userDefault(uid:)`` for the calling user.
    public static func resolve(_ explicit: String?) -> BusAddress {
        if let explicit, !explicit.isEmpty { return BusAddress(explicit) }
        if let pointer = getenv(environmentVariable), let text = String(validatingCString: pointer), !text.isEmpty {
            return BusAddress(text)
        }
        return userDefault(uid: UInt32(getuid()))
    }

    /// The longest name a sockaddr_un holds (108 bytes less the leading NUL or trailing NUL).
    public static let maxNameLength = 107

    /// Whether the name fits a Unix socket address.
    public var isValid: Bool { !name.isEmpty && name.utf8.count <= BusAddress.maxNameLength }
}
