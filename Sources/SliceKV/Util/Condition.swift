#if canImport(Glibc)
    import Glibc
#endif

/// A pthread mutex with one condition variable.
///
/// `Synchronization.Mutex` has no way to wait, and group commit and the background threads
/// need one; this is the lock that guards `DBState` (see `Engine`).
final class ConditionLock: @unchecked Sendable {
    // Heap-allocated: pthread objects must not move, and Swift may move stored properties.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    @inline(__always) func lock() { pthread_mutex_lock(mutex) }
    @inline(__always) func unlock() { pthread_mutex_unlock(mutex) }

    @inline(__always)
    func withLock<R>(_ body: () throws -> R) rethrows -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Waits for a broadcast. REQUIRES: the lock is held.
    func wait() { pthread_cond_wait(cond, mutex) }

    /// Waits for a broadcast or until `seconds` pass. REQUIRES: the lock is held.
    func wait(seconds: Double) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let nanos = Int(ts.tv_nsec) + Int(seconds * 1e9)
        ts.tv_sec += nanos / 1_000_000_000
        ts.tv_nsec = nanos % 1_000_000_000
        pthread_cond_timedwait(cond, mutex, &ts)
    }

    func broadcast() { pthread_cond_broadcast(cond) }
}

/// Monotonic clock in nanoseconds, for latency and stall accounting.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
