import CHeraldSys
import HeraldProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Connection-wide events (drops, refused publishes, the end) for ``Bus/events()``.
extension Connection {
    /// A new stream of connection events; see ``Bus/events()``.
    func events() -> AsyncStream<BusEvent> {
        let (stream, continuation) = AsyncStream.makeStream(of: BusEvent.self, bufferingPolicy: .bufferingNewest(4096))
        enum Registration { case registered(UInt64), ended(HeraldError?) }
        let registration = control.withLock { state -> Registration in
            if case .ended(let reason) = state.phase { return .ended(reason) }
            let id = state.nextSinkID
            state.nextSinkID += 1
            state.eventSinks[id] = continuation
            return .registered(id)
        }
        switch registration {
        case .registered(let id):
            continuation.onTermination = { [weak self] _ in
                _ = self?.control.withLock { $0.eventSinks.removeValue(forKey: id) }
            }
        case .ended(let reason):
            continuation.yield(.disconnected(reason))
            continuation.finish()
        }
        return stream
    }
}
