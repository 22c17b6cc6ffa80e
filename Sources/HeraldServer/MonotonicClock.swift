#if canImport(Glibc)
import Glibc
#endif

/// Seconds on CLOCK_MONOTONIC: deadlines must not jump with the wall clock.
/// The time base of every `now` the core is given.
public enum MonotonicClock {
    /// Seconds since an arbitrary point (boot), never going back.
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }

    /// Nanoseconds since the Unix epoch on CLOCK_REALTIME: when a retained message was
    /// stored, for the people reading it (never for deadlines).
    public static func wallNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(max(0, spec.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, spec.tv_nsec))
    }
}
