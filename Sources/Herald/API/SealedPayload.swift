import CHeraldSys

#if canImport(Glibc)
import Glibc
#endif

/// A payload written in place into shared memory and published as a sealed memfd: the way
/// to move a large buffer (an image, a frame of audio, a data set) between processes at
/// memory speed, without copying it through a socket.
///
/// ```swift
/// var frame = try SealedPayload(count: width * height * 4)
/// frame.withUnsafeMutableBytes { pixels in render(into: pixels) }
/// try await bus.publish("camera/frame", frame)
/// ```
///
/// The memory is a memfd mapped into this process. Publishing unmaps it, seals the memfd
/// against writing, growing and shrinking (so no process, this one included, can change it
/// any more) and passes it; each subscriber maps the same pages read-only after checking the
/// seals, and reads the payload through ``Message/withPayloadBytes(_:)`` without a copy. The
/// broker sees a frame of a few dozen bytes whatever the payload's size, and the payload may
/// be larger than the broker's maximum frame size.
///
/// Noncopyable: publishing consumes it, and one dropped unpublished frees its memory.
public struct SealedPayload: ~Copyable {
    /// The memfd, owned until published.
    let descriptor: Int32
    /// Its read-write mapping (nil base for an empty payload).
    private let mapping: UnsafeMutableRawBufferPointer

    /// Creates a payload of `count` zero bytes, to be written with ``withUnsafeMutableBytes(_:)``.
    ///
    /// - Throws: ``HeraldError/descriptorsRefused(_:)`` if the memfd cannot be created or
    ///   mapped (out of memory or descriptors).
    public init(count: Int) throws(HeraldError) {
        precondition(count >= 0, "a payload's size cannot be negative")
        var base: UnsafeMutableRawPointer?
        let descriptor = herald_memfd_create_mapped("herald-payload", count, &base)
        guard descriptor >= 0 else {
            throw .descriptorsRefused("cannot create a payload memfd of \(count) bytes: \(systemErrorDescription(herald_errno()))")
        }
        self.descriptor = descriptor
        self.mapping = UnsafeMutableRawBufferPointer(start: base, count: base == nil ? 0 : count)
    }

    /// Creates a payload holding a copy of `bytes`.
    ///
    /// - Throws: as ``init(count:)``.
    public init(copying bytes: some Collection<UInt8>) throws(HeraldError) {
        try self.init(count: bytes.count)
        withUnsafeMutableBytes { destination in
            if bytes.withContiguousStorageIfAvailable({ destination.copyMemory(from: UnsafeRawBufferPointer($0)) }) == nil {
                destination.copyBytes(from: bytes)
            }
        }
    }

    deinit {
        if let base = mapping.baseAddress { munmap(base, mapping.count) }
        close(descriptor)
    }

    /// The payload's size in bytes.
    public var count: Int { mapping.count }

    /// Calls `body` with the payload's memory to write (or read) in place. The pointer is
    /// valid only during the call.
    public mutating func withUnsafeMutableBytes<Result, Failure: Error>(
        _ body: (UnsafeMutableRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(mapping)
    }

    /// Unmaps and seals the memfd and hands it over (the caller owns it from now on).
    consuming func sealedDescriptor() throws(HeraldError) -> Int32 {
        let descriptor = self.descriptor
        let mapping = self.mapping
        discard self
        // F_SEAL_WRITE is refused while a writable shared mapping exists.
        if let base = mapping.baseAddress { munmap(base, mapping.count) }
        guard herald_memfd_seal(descriptor) == 0 else {
            let reason = systemErrorDescription(herald_errno())
            close(descriptor)
            throw .descriptorsRefused("cannot seal the payload memfd: \(reason)")
        }
        return descriptor
    }
}
