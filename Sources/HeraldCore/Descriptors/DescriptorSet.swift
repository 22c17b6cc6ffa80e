/// File descriptors one frame passed to the broker (PROTOCOL.md §4.22), held until every
/// receiver has been sent its copy.
///
/// The broker keeps one descriptor per passed file however many receivers there are:
/// `sendmsg` with SCM_RIGHTS installs a new descriptor in each receiver, so the same
/// numbers go to all of them, and the broker closes its own when the last receiver's
/// frame is written (or dropped). `holders` counts the receivers still waiting plus, while
/// the frame is being handled, the frame itself. A class because receivers' output queues
/// share it; only the core's thread touches it.
final class DescriptorSet {
    /// The descriptors, in the order the sender passed them.
    let descriptors: [Int32]
    /// The uid they are charged to: the sender's, as the kernel reported it at connect.
    let uid: UInt32
    /// Whether the sender's first descriptor holds the payload as a sealed memfd.
    let sealedPayload: Bool
    /// Queues (and the frame being handled) that still need the descriptors.
    var holders = 1

    init(descriptors: [Int32], uid: UInt32, sealedPayload: Bool) {
        self.descriptors = descriptors
        self.uid = uid
        self.sealedPayload = sealedPayload
    }

    var count: Int { descriptors.count }
}

/// A frame in a peer's output queue whose descriptors go with its first byte.
struct PendingDescriptorPass {
    /// Where the frame starts, counted in bytes from the first byte ever queued for the peer
    /// (so it survives the queue being written and compacted).
    var position: Int
    var set: DescriptorSet
}

/// What the server sends next with SCM_RIGHTS for one peer (``BrokerCore/nextDescriptorPass(of:)``).
public struct DescriptorPass {
    /// Bytes of ``BrokerCore/pendingOutput(of:)`` before the frame that carries the
    /// descriptors: write those first, without descriptors.
    public var offset: Int
    /// The descriptors to send with the frame's first byte.
    public var descriptors: [Int32]
    /// Bytes of pending output from the frame's first byte up to the next frame with
    /// descriptors (nil: none), which needs a `sendmsg` of its own.
    public var bytesUntilNextPass: Int?
}
