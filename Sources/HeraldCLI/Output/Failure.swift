import ArgumentParser
import Herald

/// Turns errors into one `herald: …` line on stderr and an exit status.
enum Failure {
    /// Prints `error` and returns the ExitCode to throw.
    static func report(_ error: HeraldError, context: String? = nil) -> ExitCode {
        StandardError.line("herald: " + (context.map { "\($0): " } ?? "") + error.description)
        return ExitCode(status(for: error))
    }

    /// The exit status for `error`.
    static func status(for error: HeraldError) -> Int32 {
        switch error {
        case .brokerUnreachable, .notAuthorized, .untrustedBroker, .handshakeFailed, .unsupportedVersion, .timeout:
            ExitStatus.noConnection
        case .connectionClosed, .connectionLost, .slowConsumerDisconnected:
            ExitStatus.connectionLost
        case .invalidTopic, .invalidFilter, .messageTooLarge, .tooManySubscriptions, .brokerError, .closed, .forbidden,
            .subscriptionRevoked, .retainedQuotaExceeded, .requestFailed, .requestRefused, .unknownPeer, .directNotAccepted,
            .descriptorsRefused:
            ExitStatus.requestFailed
        case .noResponders, .responderGone:
            ExitStatus.noAnswer
        }
    }
}
