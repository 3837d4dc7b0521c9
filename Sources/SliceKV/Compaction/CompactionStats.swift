/// What compaction has done, per output level and in all, as `Statistics.compaction` reports
/// it (RocksDB's "Compaction Stats" table, plus how much ran in parallel).
///
/// Locking: the engine updates it under its own lock when a job is registered, when it ends,
/// and when `stats()` copies it; nothing else touches it.
public struct CompactionStats: Sendable, Codable, Equatable {
    /// One output level's totals.
    public struct Level: Sendable, Codable, Equatable {
        public var level: Int
        /// Jobs that wrote into this level (trivial moves included).
        public var jobs: UInt64 = 0
        public var trivialMoves: UInt64 = 0
        public var filesRead: UInt64 = 0
        public var filesWritten: UInt64 = 0
        public var bytesRead: UInt64 = 0
        public var bytesWritten: UInt64 = 0
        /// Wall-clock time of the jobs, summed (two jobs running for a second count two).
        public var micros: UInt64 = 0
    }

    /// Jobs running now.
    public var running = 0
    /// The most jobs that ever ran at once since the store was opened.
    public var peakRunning = 0
    /// Jobs that ran, for some of their time, while another job ran (each counted once).
    public var overlappedJobs: UInt64 = 0
    /// Jobs split into key ranges merged on separate threads (`mergeParallelism`).
    public var parallelMerges: UInt64 = 0
    /// Jobs run by a manual `compact()`, and the most of them that ran at once.
    public var manualJobs: UInt64 = 0
    public var manualPeakRunning = 0
    public var levels: [Level]

    init(numLevels: Int) { levels = (0..<numLevels).map { Level(level: $0) } }

    /// Notes a job that starts while `alreadyRunning` others run (the others are marked
    /// overlapped by the caller). REQUIRES: engine lock held.
    mutating func started(alongside alreadyRunning: Int) {
        running = alreadyRunning + 1
        peakRunning = max(peakRunning, running)
        if alreadyRunning > 0 { overlappedJobs += 1 }
    }

    /// Adds a finished job's totals to its output level. REQUIRES: engine lock held.
    mutating func finished(
        outputLevel: Int, trivialMove: Bool, filesRead: Int, filesWritten: Int, bytesRead: UInt64,
        bytesWritten: UInt64, nanos: UInt64
    ) {
        guard levels.indices.contains(outputLevel) else { return }
        levels[outputLevel].jobs += 1
        if trivialMove { levels[outputLevel].trivialMoves += 1 }
        levels[outputLevel].filesRead += UInt64(filesRead)
        levels[outputLevel].filesWritten += UInt64(filesWritten)
        levels[outputLevel].bytesRead += bytesRead
        levels[outputLevel].bytesWritten += bytesWritten
        levels[outputLevel].micros += nanos / 1000
    }
}
