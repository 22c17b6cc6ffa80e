/// Standard error, for diagnostics.
enum StandardError {
    /// Writes `text` and a newline to stderr.
    static func line(_ text: String) {
        Output(fd: 2).write(text + "\n")
    }
}
