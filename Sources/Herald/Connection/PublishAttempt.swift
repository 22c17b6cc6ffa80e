
/// Outcome of one attempt to append a PUBLISH.
@usableFromInline
enum PublishAttempt {
    /// Appended to the outgoing buffer.
    case queued
    /// The outgoing buffer is at its limit: wait for space and try again.
    case full
    /// Refused; nothing was sent.
    case failed(HeraldError)
}
