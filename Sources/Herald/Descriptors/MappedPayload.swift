import CHeraldSys

#if canImport(Glibc)
import Glibc
#endif

/// A payload that arrived as a sealed memfd (PROTOCOL.md §4.22), mapped read-only: the
/// message's bytes are read in place from the shared pages, whatever their number, never
/// copied through a socket.
///
/// The seals are checked before the memory is trusted: with F_SEAL_WRITE, F_SEAL_GROW and
/// F_SEAL_SHRINK in place, no process (the sender included) can change or truncate the
/// file, so the bytes cannot change under the reader and reading never faults. The
/// descriptor is closed once mapped (the mapping keeps the file alive); the mapping goes
/// when the last message referring to it does.
///
/// Immutable after init and read-only memory, hence `@unchecked Sendable`.
@usableFromInline
final class MappedPayload: @unchecked Sendable {
    /// The mapped bytes; empty (nil base) for an empty payload.
    @usableFromInline let bytes: UnsafeRawBufferPointer

    private init(bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Maps `descriptor` and closes it. Returns the mapping, or why the payload cannot be
    /// trusted or read.
    static func map(closing descriptor: Int32) -> Result<MappedPayload, PayloadRejection> {
        defer { close(descriptor) }
        var mapping: UnsafeMutableRawPointer?
        var size = 0
        switch herald_map_sealed_memfd(descriptor, &mapping, &size) {
        case 0:
            return .success(MappedPayload(bytes: UnsafeRawBufferPointer(start: mapping, count: mapping == nil ? 0 : size)))
        case 1:
            return .failure(PayloadRejection("the payload descriptor is not a memfd sealed against writing, growing and shrinking"))
        default:
            return .failure(PayloadRejection("the payload memfd cannot be mapped: \(systemErrorDescription(herald_errno()))"))
        }
    }
}

/// Why a payload passed as a sealed memfd was not accepted (see ``Message/payloadRejection``).
struct PayloadRejection: Error, Sendable {
    var reason: String
    init(_ reason: String) { self.reason = reason }
}
