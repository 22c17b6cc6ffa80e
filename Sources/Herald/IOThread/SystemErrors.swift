#if canImport(Glibc)
import Glibc
#endif

// Small helpers for turning system results into what a user reads.

/// Whole milliseconds in `duration`, rounded down.
func milliseconds(_ duration: Duration) -> Int64 {
    let (seconds, attoseconds) = duration.components
    return seconds * 1000 + attoseconds / 1_000_000_000_000_000
}

/// A short description of an errno value.
func systemErrorDescription(_ error: Int32) -> String {
    guard let text = strerror(error) else { return "error \(error)" }
    return String(cString: text)
}

/// Why connect() failed, in terms a user acts on.
func connectFailureDescription(_ error: Int32) -> String {
    switch error {
    case ECONNREFUSED: "connection refused (is heraldd running?)"
    case ENOENT: "no such socket (is heraldd running?)"
    case EACCES, EPERM: "permission denied"
    case ENAMETOOLONG: "the address is too long for a Unix socket"
    default: systemErrorDescription(error)
    }
}
