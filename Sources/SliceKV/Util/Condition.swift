#if canImport(Glibc)
    import Glibc
#endif

/// A pthread mutex with two condition variables: one for foreground waiters (queued writers,
/// stalled writers, `flush()`, `close()`) and one for background threads waiting for work.
///
/// `Synchronization.Mutex` has no way to wait. Two conditions, because a broadcast per write
/// that also woke the flush and compaction threads cost more than the write itself.
final class ConditionLock: @unchecked Sendable {
    // Heap-allocated: pthread objects must not move, and Swift may move stored properties.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let cond: UnsafeMutablePointer<pthread_cond_t>
    private let backgroundCond: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        cond = .allocate(capacity: 1)
        backgroundCond = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_cond_init(backgroundCond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_cond_destroy(backgroundCond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        backgroundCond.deallocate()
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
    func wait(seconds: Double) { timedWait(cond, seconds) }

    /// Background threads wait here for `signalBackground`. REQUIRES: the lock is held.
    func waitForWork(seconds: Double) { timedWait(backgroundCond, seconds) }

    private func timedWait(_ c: UnsafeMutablePointer<pthread_cond_t>, _ seconds: Double) {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let nanos = Int(ts.tv_nsec) + Int(seconds * 1e9)
        ts.tv_sec += nanos / 1_000_000_000
        ts.tv_nsec = nanos % 1_000_000_000
        pthread_cond_timedwait(c, mutex, &ts)
    }

    /// Wakes foreground waiters.
    func broadcast() { pthread_cond_broadcast(cond) }

    /// Wakes background threads: there may be work.
    func signalBackground() { pthread_cond_broadcast(backgroundCond) }

    /// Both: a change that foreground and background waiters care about.
    func broadcastAll() {
        pthread_cond_broadcast(cond)
        pthread_cond_broadcast(backgroundCond)
    }
}

/// Monotonic clock in nanoseconds, for latency and stall accounting.
@inline(__always)
func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}
