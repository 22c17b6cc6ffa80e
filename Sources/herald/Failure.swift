import ArgumentParser
import Herald

#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses of `herald` (also listed in the root command's help).
enum ExitStatus {
    /// The request failed: invalid topic or filter, or the broker refused it.
    static let requestFailed: Int32 = 1
    /// No connection: broker unreachable, not authorized, handshake failed or timed out.
    static let noConnection: Int32 = 2
    /// The connection was lost or the broker closed it.
    static let connectionLost: Int32 = 3
}

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
        case .brokerUnreachable, .notAuthorized, .handshakeFailed, .unsupportedVersion, .timeout:
            ExitStatus.noConnection
        case .connectionClosed, .connectionLost, .slowConsumerDisconnected:
            ExitStatus.connectionLost
        case .invalidTopic, .invalidFilter, .messageTooLarge, .tooManySubscriptions, .brokerError, .closed:
            ExitStatus.requestFailed
        }
    }
}

/// Unbuffered writes to a file descriptor, whole lines at a time.
struct Output {
    let fd: Int32

    /// Writes all of `bytes`, retrying after EINTR and partial writes.
    func write(_ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += n
        }
    }

    /// Writes `text`.
    func write(_ text: String) {
        var text = text
        text.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }
}

/// Standard error, for diagnostics.
enum StandardError {
    /// Writes `text` and a newline to stderr.
    static func line(_ text: String) {
        Output(fd: 2).write(text + "\n")
    }
}
