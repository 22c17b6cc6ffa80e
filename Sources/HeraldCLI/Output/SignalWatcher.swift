import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// Runs a handler (on a background queue) when one of the given signals arrives, instead of
/// the default action.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(signals: [Int32], handler: @escaping @Sendable () -> Void) {
        sources = signals.map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler(handler: handler)
            source.resume()
            return source
        }
    }

    /// Stops watching (the signals stay ignored until exit).
    func cancel() {
        for source in sources { source.cancel() }
    }
}
