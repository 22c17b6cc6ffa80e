import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// What a received message carries besides its bytes (PROTOCOL.md §4.22): the file
/// descriptors passed with it, how many the broker withheld, and its payload when that
/// came as a sealed memfd.
///
/// The descriptors belong to the message until someone takes them
/// (``Message/takeFileDescriptors()``); those never taken are closed when the last copy of
/// the message is gone, so a subscriber that ignores descriptors leaks none. Copies of a
/// ``Message`` share one attachment; the lock makes taking them safe from any thread.
@usableFromInline
final class MessageAttachment: Sendable {
    /// Descriptors not yet taken (shared with an attachment made by ``withoutPayload()``).
    private let descriptors: DescriptorBox
    /// Descriptors the sender attached that this bus did not receive.
    let withheld: Int
    /// The payload, when it came as a sealed memfd and was mapped.
    @usableFromInline let mappedPayload: MappedPayload?
    /// Why a payload sent as a sealed memfd was not accepted; nil if it was (or was not one).
    let payloadRejection: String?

    init(descriptors: [Int32], withheld: Int, mappedPayload: MappedPayload? = nil, payloadRejection: String? = nil) {
        self.descriptors = DescriptorBox(descriptors)
        self.withheld = withheld
        self.mappedPayload = mappedPayload
        self.payloadRejection = payloadRejection
    }

    private init(sharing other: MessageAttachment) {
        descriptors = other.descriptors
        withheld = other.withheld
        mappedPayload = nil
        payloadRejection = nil
    }

    /// The same descriptors (shared, so taking them from either takes them from both)
    /// without the payload: for a message whose payload was replaced.
    @usableFromInline
    func withoutPayload() -> MessageAttachment {
        MessageAttachment(sharing: self)
    }

    /// The descriptors not yet taken (still owned by the attachment).
    var current: [Int32] { descriptors.current }

    /// ``current`` as the library hands them out (``Message/fileDescriptors``).
    var fileDescriptors: [FileDescriptor] { current.map(FileDescriptor.init(rawValue:)) }

    /// Hands the descriptors not yet taken to the caller, who must close them.
    func take() -> [Int32] { descriptors.take() }

    /// Builds the attachment of a frame that announced `block` and brought `received`
    /// (its `block.count` descriptors, owned from now on): maps the first as the payload if
    /// the sender said it is one.
    static func make(block: DescriptorBlock, received: [Int32]) -> MessageAttachment {
        let withheld = Int(block.withheld)
        guard block.sealedPayload else { return MessageAttachment(descriptors: received, withheld: withheld) }
        guard let first = received.first else {
            return MessageAttachment(
                descriptors: [], withheld: withheld,
                payloadRejection: "the payload came as a sealed memfd, which the broker withheld (this bus does not accept descriptors)")
        }
        switch MappedPayload.map(closing: first) {
        case .success(let mapped):
            return MessageAttachment(descriptors: Array(received.dropFirst()), withheld: withheld, mappedPayload: mapped)
        case .failure(let rejection):
            return MessageAttachment(descriptors: Array(received.dropFirst()), withheld: withheld, payloadRejection: rejection.reason)
        }
    }

    /// A second attachment for another subscription of this bus that the same message
    /// matched: its own duplicates of the descriptors (so each can be taken and closed on its
    /// own), the same read-only mapping.
    /// A descriptor that cannot be duplicated (this process is out of descriptors) counts
    /// as withheld, so the receiver still learns it is missing.
    func duplicate() -> MessageAttachment {
        let originals = current
        let copies = originals.compactMap { descriptor -> Int32? in
            let copy = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            return copy >= 0 ? copy : nil
        }
        return MessageAttachment(
            descriptors: copies, withheld: withheld + originals.count - copies.count, mappedPayload: mappedPayload,
            payloadRejection: payloadRejection)
    }
}

/// Received descriptors not yet taken: closed with the box.
private final class DescriptorBox: Sendable {
    private let descriptors: Mutex<[Int32]>

    init(_ descriptors: [Int32]) {
        self.descriptors = Mutex(descriptors)
    }

    deinit {
        for descriptor in descriptors.withLock({ $0 }) { close(descriptor) }
    }

    var current: [Int32] { descriptors.withLock { $0 } }

    func take() -> [Int32] {
        descriptors.withLock { descriptors in
            defer { descriptors = [] }
            return descriptors
        }
    }
}
