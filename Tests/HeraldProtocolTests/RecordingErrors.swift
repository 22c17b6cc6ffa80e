import Testing

/// Runs `body`, recording anything it throws as a test issue.
///
/// PropertyBased discards errors thrown by a property body (it runs the body under `try?`),
/// so a property whose `try` fails would otherwise pass. Every throwing body goes through this.
func recordingErrors(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
    do {
        try body()
    } catch {
        Issue.record(error, "thrown from a property body", sourceLocation: sourceLocation)
    }
}
