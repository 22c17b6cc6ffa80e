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
}
