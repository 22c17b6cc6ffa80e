#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A received message read in place from its subscription's receive buffer, as
/// ``Subscription/Iterator/nextBatch(limit:_:)`` lends it to its closure.
///
/// A view costs no allocation: its payload stays in the receive buffer, which is reused once
/// the closure returns. The lifetime rule is enforced rather than documented: the view is
/// noncopyable and only lent (`borrowing`), so it cannot be stored or escape the closure,
/// and the payload bytes are reachable only inside ``withPayload(_:)``. Keep ``message`` (a
/// copy) to hold on to a message.
public struct MessageView: ~Copyable {
    /// The topic the message was published on.
    public let topic: String
    /// Who published it.
    public let sender: Message.Sender
    /// How many messages the broker reported dropped just before this one (see
    /// ``Message/droppedBefore``).
    public let droppedBefore: UInt64
    /// Whether this is the first message after a reconnect (see ``Message/afterReconnect``).
    public let afterReconnect: Bool
    /// When the broker stored it, for a retained message; nil otherwise (see ``Message/retainedAt``).
    public let retainedAt: Date?
    /// Whether this is the topic's retained message (see ``Message/isRetained``).
    public var isRetained: Bool { retainedAt != nil }
    /// The payload in the receive buffer: valid while the view is lent, never handed out
    /// but for the duration of ``withPayload(_:)``.
    let payloadBytes: UnsafeRawBufferPointer
    /// Descriptors and a mapped payload, if the message carries them.
    let attachment: MessageAttachment?

    init(
        topic: String, payloadBytes: UnsafeRawBufferPointer, sender: Message.Sender, droppedBefore: UInt64, afterReconnect: Bool,
        retainedAt: Date?, attachment: MessageAttachment? = nil
    ) {
        self.attachment = attachment
        self.retainedAt = retainedAt
        self.topic = topic
        self.payloadBytes = payloadBytes
        self.sender = sender
        self.droppedBefore = droppedBefore
        self.afterReconnect = afterReconnect
    }

    /// The payload's size in bytes.
    public var payloadCount: Int { payloadBytes.count }

    /// Calls `body` with the payload bytes, exactly as published, in place. The pointer is
    /// valid only during the call: copy what must outlive it.
    public func withPayload<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(payloadBytes)
    }

    /// The message as a ``Message`` value, with the payload copied out (a payload mapped from
    /// a sealed memfd is shared, not copied) and the descriptors shared with this view's.
    public var message: Message {
        Message(
            topic: topic, payloadBytes: payloadBytes, attachment: attachment, sender: sender, droppedBefore: droppedBefore,
            afterReconnect: afterReconnect, retainedAt: retainedAt)
    }

    /// The file descriptors passed with the message (see ``Message/fileDescriptors``); they
    /// stay open while the view is lent. Keep ``message`` and take them from it to keep them.
    public var fileDescriptors: [FileDescriptor] { attachment?.fileDescriptors ?? [] }

    /// The payload as text, or nil if it is not valid UTF-8.
    public var string: String? { String(validating: payloadBytes, as: UTF8.self) }
}
