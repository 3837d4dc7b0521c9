import Histogram
import Synchronization

/// Live counters, updated with relaxed atomics on the hot paths and read by `stats()`.
final class EngineCounters: Sendable {
    let puts = Atomic<Int>(0)
    let deletes = Atomic<Int>(0)
    let gets = StripedCounter()  // on every read: no shared cache line
    let getHits = StripedCounter()  // on every read: no shared cache line
    let writeBatches = Atomic<Int>(0)
    let userBytesWritten = Atomic<Int>(0)
    let walBytesWritten = Atomic<Int>(0)
    let walSyncs = Atomic<Int>(0)
    let groupCommits = Atomic<Int>(0)
    let checkpoints = Atomic<Int>(0)
    /// Writes applied on the caller's thread by `writeIfUncontended` (the async API's fast path).
    let inlineWrites = Atomic<Int>(0)
    let flushes = Atomic<Int>(0)
    let flushBytesWritten = Atomic<Int>(0)
    let compactions = Atomic<Int>(0)
    let subcompactions = Atomic<Int>(0)
    let trivialMoves = Atomic<Int>(0)
    let compactionBytesRead = Atomic<Int>(0)
    let compactionBytesWritten = Atomic<Int>(0)
    let stalls = Atomic<Int>(0)
    let stallNanos = Atomic<Int>(0)
    let slowdowns = Atomic<Int>(0)
    let blockReads = StripedCounter()  // on every read: no shared cache line
    /// Data blocks decompressed after a read (block cache misses on compressed blocks).
    let blocksDecompressed = StripedCounter()
    let blockReadBytes = StripedCounter()  // on every read: no shared cache line
    let bloomChecks = StripedCounter()  // on every read: no shared cache line
    let bloomUseful = StripedCounter()  // on every read: no shared cache line
    let filesDeleted = Atomic<Int>(0)
    let tornWALTails = Atomic<Int>(0)
    /// Bytes of WAL that a lenient recovery mode dropped (damage, not torn tails).
    let walBytesDropped = Atomic<Int>(0)
    let blobFilesCreated = Atomic<Int>(0)
    let blobFilesDeleted = Atomic<Int>(0)
    let blobBytesWritten = Atomic<Int>(0)
    let blobBytesRead = Atomic<Int>(0)
    let blobValuesWritten = Atomic<Int>(0)
    let blobValuesStaged = Atomic<Int>(0)
    let blobBytesRelocated = Atomic<Int>(0)
    /// Bytes of blob files deleted (all their values garbage): space given back.
    let blobBytesReclaimed = Atomic<Int>(0)
    /// Blob files sealed before they were full, for their garbage.
    let blobFilesSealedEarly = Atomic<Int>(0)
    /// Memtables frozen before they were full because they hid much overwritten blob data.
    let blobGarbageFlushes = Atomic<Int>(0)
    /// Memtables frozen after a quiet period so what they overwrote or deleted can be reclaimed.
    let idleFlushes = Atomic<Int>(0)
    /// Memtables frozen because their oldest write reached `Options.periodicFlushSeconds`.
    let periodicFlushes = Atomic<Int>(0)
    let spaceReserveReleases = Atomic<Int>(0)
    /// Compactions started to collect blob files that are mostly garbage.
    let blobGCCompactions = Atomic<Int>(0)
    /// Compactions started because a table was mostly deletions.
    let tombstoneCompactions = Atomic<Int>(0)
    /// Universal compactions by reason: space amplification, size ratio, too many runs.
    let universalSpaceCompactions = Atomic<Int>(0)
    let universalSizeRatioCompactions = Atomic<Int>(0)
    let universalRunCountCompactions = Atomic<Int>(0)

    /// Latencies in nanoseconds of every `latencySampleInterval`-th get and write. Why not
    /// every one: two clock reads, the lock and the record measured as 6-8% of a cached get
    /// (~80 ns); percentiles of a regular 1-in-8 sample of a long run are the same numbers.
    let getLatency = Locked(EngineCounters.makeHistogram())
    let putLatency = Locked(EngineCounters.makeHistogram())
    /// Numbers writes for sampling (`writeBatches` counts only those that succeed).
    let writeTicket = Atomic<Int>(0)
    static let latencySampleInterval = 8

    /// A start time when the operation with this ticket is to be timed, else 0.
    @inline(__always)
    static func sampleStart(ticket: Int) -> UInt64 {
        ticket & (latencySampleInterval - 1) == 0 ? monotonicNanos() : 0
    }

    static func makeHistogram() -> Histogram<UInt64> {
        var h = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .two)
        h.autoResize = true
        return h
    }

    @inline(__always)
    func record(_ histogram: Locked<Histogram<UInt64>>, since start: UInt64) {
        guard start != 0 else { return }
        let elapsed = monotonicNanos() &- start
        histogram.withLock { _ = $0.record(elapsed) }
    }
}
