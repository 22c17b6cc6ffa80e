#if canImport(Glibc)
import Glibc
#endif

/// The progress line on stderr: redrawn in place on a terminal, otherwise a line every
/// few seconds (so logs stay readable).
final class ProgressLine {
    private let isTerminal = isatty(2) == 1
    private var lastDraw: UInt64 = 0
    private var drawn = false
    private let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
    }

    /// Starts a new workload's line.
    func begin(_ text: String) {
        lastDraw = monotonicNanos()
        guard enabled else { return }
        if isTerminal {
            draw(text)
        } else {
            StandardError.line(text + " ...")
        }
    }

    func update(_ text: String) {
        guard enabled else { return }
        let now = monotonicNanos()
        let interval: UInt64 = isTerminal ? 100_000_000 : 5_000_000_000
        guard now - lastDraw >= interval else { return }
        lastDraw = now
        if isTerminal {
            draw(text)
        } else {
            StandardError.line(text)
        }
    }

    /// Replaces the line with a permanent one.
    func finish(_ text: String) {
        guard enabled else { return }
        if isTerminal && drawn { Output(fd: 2).write("\r\u{1B}[K") }
        drawn = false
        StandardError.line(text)
    }

    private func draw(_ text: String) {
        Output(fd: 2).write("\r\u{1B}[K" + text)
        drawn = true
    }
}
