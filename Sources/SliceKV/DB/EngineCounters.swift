import Histogram
import Synchronization

/// Live counters, updated with relaxed atomics on the hot paths and read by `stats()`.
final class EngineCounters: Sendable {
    let puts = Atomic<Int>(0)
    let deletes = Atomic<Int>(0)
    let gets = Atomic<Int>(0)
    let getHits = Atomic<Int>(0)
    let writeBatches = Atomic<Int>(0)
    let userBytesWritten = Atomic<Int>(0)
    let walBytesWritten = Atomic<Int>(0)
    let walSyncs = Atomic<Int>(0)
    let groupCommits = Atomic<Int>(0)
    let flushes = Atomic<Int>(0)
    let flushBytesWritten = Atomic<Int>(0)
    let compactions = Atomic<Int>(0)
    let compactionsRunning = Atomic<Int>(0)
    let subcompactions = Atomic<Int>(0)
    let trivialMoves = Atomic<Int>(0)
    let compactionBytesRead = Atomic<Int>(0)
    let compactionBytesWritten = Atomic<Int>(0)
    let stalls = Atomic<Int>(0)
    let stallNanos = Atomic<Int>(0)
    let slowdowns = Atomic<Int>(0)
    let blockReads = Atomic<Int>(0)
    let blockReadBytes = Atomic<Int>(0)
    let bloomChecks = Atomic<Int>(0)
    let bloomUseful = Atomic<Int>(0)
    let filesDeleted = Atomic<Int>(0)
    let tornWALTails = Atomic<Int>(0)
    let blobFilesCreated = Atomic<Int>(0)
    let blobFilesDeleted = Atomic<Int>(0)
    let blobBytesWritten = Atomic<Int>(0)
    let blobBytesRead = Atomic<Int>(0)
    let blobValuesWritten = Atomic<Int>(0)
    let blobBytesRelocated = Atomic<Int>(0)

    /// Latencies in nanoseconds. One lock per histogram: recording costs ~20 ns.
    let getLatency = Locked(EngineCounters.makeHistogram())
    let putLatency = Locked(EngineCounters.makeHistogram())

    static func makeHistogram() -> Histogram<UInt64> {
        var h = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
        h.autoResize = true
        return h
    }

    @inline(__always)
    func record(_ histogram: Locked<Histogram<UInt64>>, since start: UInt64) {
        let elapsed = monotonicNanos() &- start
        histogram.withLock { _ = $0.record(elapsed) }
    }
}
