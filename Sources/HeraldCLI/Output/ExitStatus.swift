/// Exit statuses of `herald` (also listed in the root command's help).
enum ExitStatus {
    /// The request failed: invalid topic or filter, or the broker refused it.
    static let requestFailed: Int32 = 1
    /// No connection: broker unreachable, not authorized, handshake failed or timed out.
    static let noConnection: Int32 = 2
    /// The connection was lost or the broker closed it.
    static let connectionLost: Int32 = 3
    /// A request got no answer: nobody serves its topic, the responder left, or it timed out.
    static let noAnswer: Int32 = 4
}
