import Foundation
import Histogram

/// A snapshot of the engine's counters, taken by `stats()`.
///
/// Available as this struct, as Prometheus text exposition (`prometheusText`) and as JSON
/// (`jsonText`); `print()` writes a human summary to standard output.
public struct Statistics: Sendable, Codable {
    /// A named snapshot's space: all its files' allocated bytes, and those of files the store
    /// itself no longer has (kept alive by snapshots only).
    public struct NamedSnapshot: Sendable, Codable, Equatable {
        public var name: String
        public var bytes: UInt64
        public var unsharedBytes: UInt64
    }

    public struct Level: Sendable, Codable {
        public var level: Int
        public var files: Int
        /// Bytes of the level's table files on disk (compressed blocks as stored).
        public var bytes: UInt64
        /// What those files would take with every data block uncompressed (equal to `bytes`
        /// for a level without compressed blocks).
        public var uncompressedBytes: UInt64
        /// Data blocks stored compressed, and all data blocks, in the level's tables.
        public var compressedBlocks: UInt64
        public var dataBlocks: UInt64
    }

    /// Latency percentiles in microseconds, from every 8th operation (timing each one cost
    /// 6-8% of a cached get); `count` is all operations.
    public struct Latency: Sendable, Codable {
        public var count: UInt64
        public var p50: Double
        public var p90: Double
        public var p99: Double
        public var p999: Double
        public var max: Double

        init(_ h: Histogram<UInt64>, count: UInt64) {
            self.count = count
            func us(_ v: UInt64) -> Double { (Double(v) / 1000).rounded(toPlaces: 3) }
            p50 = h.totalCount == 0 ? 0 : us(h.valueAtPercentile(50))
            p90 = h.totalCount == 0 ? 0 : us(h.valueAtPercentile(90))
            p99 = h.totalCount == 0 ? 0 : us(h.valueAtPercentile(99))
            p999 = h.totalCount == 0 ? 0 : us(h.valueAtPercentile(99.9))
            max = h.totalCount == 0 ? 0 : us(h.max)
        }
    }

    public var puts: UInt64
    public var deletes: UInt64
    public var gets: UInt64
    public var getHits: UInt64
    public var writeBatches: UInt64
    public var lastSequence: UInt64

    /// Key and value bytes handed to put/delete/write.
    public var userBytesWritten: UInt64
    public var walBytesWritten: UInt64
    public var walSyncs: UInt64
    /// WAL writes by a group-commit leader; `writeBatches / groupCommits` is the mean group size.
    public var groupCommits: UInt64
    /// Writes through the async API applied where they were called (no queue, no room to
    /// wait for), without a hop to an I/O thread.
    public var inlineWrites: UInt64 = 0
    /// Checkpoints taken (`SliceDB.checkpoint(to:)`).
    public var checkpoints: UInt64 = 0
    public var flushBytesWritten: UInt64
    public var compactionBytesWritten: UInt64
    /// (WAL + flush + compaction bytes written) / user bytes written.
    public var writeAmplification: Double

    public var memtableBytes: UInt64
    public var immutableMemtables: Int
    public var immutableMemtableBytes: UInt64

    public var levels: [Level]
    public var flushes: UInt64
    public var compactions: UInt64
    public var compactionsRunning: Int
    public var subcompactions: UInt64
    public var trivialMoves: UInt64
    public var compactionBytesRead: UInt64

    public var stalls: UInt64
    public var stallMicros: UInt64
    public var slowdowns: UInt64

    public var blockCacheHits: UInt64
    public var blockCacheMisses: UInt64
    public var blockCacheHitRatio: Double
    public var blockCacheBytes: UInt64
    public var blockCacheCapacity: UInt64
    public var blockCacheEntries: Int
    public var blockReads: UInt64
    public var blockReadBytes: UInt64
    /// Data blocks decompressed after a read (compressed blocks missing from the block cache).
    public var blocksDecompressed: UInt64 = 0
    /// Named snapshots in the store's directory (`SliceDB.createSnapshot(named:)`).
    public var namedSnapshots: [NamedSnapshot] = []
    /// Compaction per output level, and how many jobs ran at once.
    public var compaction: CompactionStats
    public var openTables: Int

    public var bloomChecks: UInt64
    /// Lookups a bloom filter answered "absent" without reading the table.
    public var bloomUsefulNegatives: UInt64

    public var getLatency: Latency
    public var putLatency: Latency

    /// Torn WAL tails dropped by recovery since this store was opened.
    public var tornWALTailsDropped: UInt64
    public var obsoleteFilesDeleted: UInt64

    /// Blob files (large values) live in the current version.
    public var blobFiles = 0
    /// Bytes of blob records still referenced (or not yet accounted), and bytes that are garbage
    /// (overwritten or deleted values whose file still holds other live values).
    public var blobLiveBytes: UInt64 = 0
    public var blobGarbageBytes: UInt64 = 0
    /// Bytes written to blob files (values and chunk checksums) and read from them.
    public var blobBytesWritten: UInt64 = 0
    public var blobBytesRead: UInt64 = 0
    public var blobValuesWritten: UInt64 = 0
    /// Of those, values staged ahead of their batch (`StagedValueWriter`: a mount's streams).
    public var blobValuesStaged: UInt64 = 0
    public var blobFilesDeleted: UInt64 = 0
    /// Bytes of live values that compaction moved out of mostly-garbage blob files.
    public var blobBytesRelocated: UInt64 = 0
    /// Bytes of blob files deleted because every value in them was garbage: space given back.
    public var blobBytesReclaimed: UInt64 = 0
    /// Blob files sealed before they were full, so that their garbage could be reclaimed.
    public var blobFilesSealedEarly: UInt64 = 0
    /// Blob bytes that newer entries in the memtables hide: garbage from the next flush on,
    /// not yet in `blobGarbageBytes`.
    public var memtableBlobGarbageBytes: UInt64 = 0
    /// Memtables flushed early because they hid `Options.memtableGarbageTrigger` blob bytes.
    public var blobGarbageFlushes: UInt64 = 0
    /// Memtables flushed after `Options.idleFlushSeconds` without writes.
    public var idleFlushes: UInt64 = 0
    /// Times the store gave up its space reserve (`Options.spaceReserve`) to get out of a full disk.
    public var spaceReserveReleases: UInt64 = 0
    /// Bytes of the space reserve given up and not taken back yet (0: it is whole).
    public var spaceReserveShortfall: UInt64 = 0
    /// Compactions started to collect blob files that are mostly garbage.
    public var blobGCCompactions: UInt64 = 0
    /// Compactions started because a table was mostly deletions.
    public var tombstoneCompactions: UInt64 = 0
    /// Memtables flushed because their oldest write reached `Options.periodicFlushSeconds`.
    public var periodicFlushes: UInt64 = 0
    /// The compaction style the store runs with, and universal compactions by reason.
    public var compactionStyle: CompactionStyle = .leveled
    public var universalSpaceAmplificationCompactions: UInt64 = 0
    public var universalSizeRatioCompactions: UInt64 = 0
    public var universalRunCountCompactions: UInt64 = 0

    /// Bytes of WAL a lenient `walRecovery` mode dropped at open (damage, not torn tails).
    public var walBytesDroppedByRecovery: UInt64 = 0
    /// The error that stopped the store, if one did (a failed WAL write or sync, a failed flush
    /// or compaction): every later write fails with it until the store is reopened.
    public var backgroundError: String?

    public var totalFiles: Int { levels.reduce(0) { $0 + $1.files } }
    public var totalTableBytes: UInt64 { levels.reduce(0) { $0 + $1.bytes } }

    /// JSON with stable keys (sorted), one object.
    public var jsonText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// A Prometheus label value: backslash, double quote and newline escaped.
    static func labelValue(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Prometheus text exposition (version 0.0.4): `slice_` metrics with HELP and TYPE lines.
    public var prometheusText: String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ samples: [(String, Double)]) {
            out += "# HELP slice_\(name) \(help)\n# TYPE slice_\(name) \(type)\n"
            for (labels, value) in samples {
                let v = value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
                out += "slice_\(name)\(labels) \(v)\n"
            }
        }
        func one(_ name: String, _ type: String, _ help: String, _ value: Double) {
            metric(name, type, help, [("", value)])
        }
        one("puts_total", "counter", "Keys written by put and write batches.", Double(puts))
        one("deletes_total", "counter", "Keys deleted.", Double(deletes))
        one("gets_total", "counter", "Point lookups.", Double(gets))
        one("get_hits_total", "counter", "Point lookups that found a value.", Double(getHits))
        one("write_batches_total", "counter", "Write calls (batches) acknowledged.", Double(writeBatches))
        one("last_sequence", "gauge", "Sequence number of the newest write.", Double(lastSequence))
        one("user_bytes_written_total", "counter", "Key and value bytes given to writes.", Double(userBytesWritten))
        one("wal_bytes_written_total", "counter", "Bytes appended to write-ahead logs.", Double(walBytesWritten))
        one("wal_syncs_total", "counter", "fdatasync calls on write-ahead logs.", Double(walSyncs))
        one("group_commits_total", "counter", "WAL writes made by a group-commit leader.", Double(groupCommits))
        one("checkpoints_total", "counter", "Checkpoints taken.", Double(checkpoints))
        one("snapshots", "gauge", "Named snapshots kept in the store's directory.", Double(namedSnapshots.count))
        metric(
            "snapshot_bytes", "gauge", "Bytes of each named snapshot's files.",
            namedSnapshots.map { ("{name=\"\(Statistics.labelValue($0.name))\"}", Double($0.bytes)) })
        metric(
            "snapshot_unshared_bytes", "gauge",
            "Bytes of each named snapshot's files that the store no longer has (kept by snapshots only).",
            namedSnapshots.map { ("{name=\"\(Statistics.labelValue($0.name))\"}", Double($0.unsharedBytes)) })
        one(
            "inline_writes_total", "counter", "Async writes applied on the calling thread (no hop to an I/O thread).",
            Double(inlineWrites))
        one("flush_bytes_written_total", "counter", "Bytes written by memtable flushes.", Double(flushBytesWritten))
        one(
            "compaction_bytes_written_total", "counter", "Bytes written by compactions.", Double(compactionBytesWritten)
        )
        one("compaction_bytes_read_total", "counter", "Bytes read by compactions.", Double(compactionBytesRead))
        one("write_amplification", "gauge", "Bytes written to disk per user byte written.", writeAmplification)
        one("memtable_bytes", "gauge", "Memory used by the active memtable.", Double(memtableBytes))
        one("immutable_memtables", "gauge", "Frozen memtables waiting to be flushed.", Double(immutableMemtables))
        one("immutable_memtable_bytes", "gauge", "Memory used by frozen memtables.", Double(immutableMemtableBytes))
        metric(
            "level_files", "gauge", "Table files per level.",
            levels.map { ("{level=\"\($0.level)\"}", Double($0.files)) })
        metric(
            "level_bytes", "gauge", "Table bytes per level.",
            levels.map { ("{level=\"\($0.level)\"}", Double($0.bytes)) })
        metric(
            "level_uncompressed_bytes", "gauge", "Table bytes per level with every data block uncompressed.",
            levels.map { ("{level=\"\($0.level)\"}", Double($0.uncompressedBytes)) })
        one(
            "blocks_decompressed_total", "counter", "Data blocks decompressed after a read.", Double(blocksDecompressed)
        )
        one("flushes_total", "counter", "Memtables flushed to L0.", Double(flushes))
        one("compactions_total", "counter", "Compaction jobs finished (trivial moves included).", Double(compactions))
        one("compactions_running", "gauge", "Compaction jobs running now.", Double(compactionsRunning))
        one(
            "compactions_peak_running", "gauge", "Most compaction jobs that ran at once.",
            Double(compaction.peakRunning))
        one(
            "compactions_overlapped_total", "counter", "Compaction jobs that ran while another one ran.",
            Double(compaction.overlappedJobs))
        one(
            "compaction_parallel_merges_total", "counter", "Compaction jobs split into key ranges merged in parallel.",
            Double(compaction.parallelMerges))
        one("manual_compaction_jobs_total", "counter", "Jobs run by manual compactions.", Double(compaction.manualJobs))
        one(
            "manual_compaction_peak_running", "gauge", "Most jobs of manual compactions that ran at once.",
            Double(compaction.manualPeakRunning))
        let active = compaction.levels.filter { $0.jobs > 0 }
        func perLevel(_ name: String, _ help: String, _ value: (CompactionStats.Level) -> Double) {
            metric(name, "counter", help, active.map { ("{level=\"\($0.level)\"}", value($0)) })
        }
        perLevel("compaction_jobs_total", "Compaction jobs by output level.") { Double($0.jobs) }
        perLevel("compaction_read_bytes_total", "Bytes compactions read, by output level.") { Double($0.bytesRead) }
        perLevel("compaction_written_bytes_total", "Bytes compactions wrote, by output level.") {
            Double($0.bytesWritten)
        }
        perLevel("compaction_files_read_total", "Table files compactions read, by output level.") {
            Double($0.filesRead)
        }
        perLevel("compaction_files_written_total", "Table files compactions wrote, by output level.") {
            Double($0.filesWritten)
        }
        perLevel("compaction_seconds_total", "Time compaction jobs ran, by output level.") { Double($0.micros) / 1e6 }
        one(
            "subcompactions_total", "counter", "Key ranges merged in parallel within compaction jobs.",
            Double(subcompactions))
        one("trivial_moves_total", "counter", "Compactions done by moving a file down a level.", Double(trivialMoves))
        one("stalls_total", "counter", "Writes that waited for a flush or for L0 to shrink.", Double(stalls))
        one("stall_seconds_total", "counter", "Time writes spent stalled.", Double(stallMicros) / 1e6)
        one("slowdowns_total", "counter", "Writes delayed 1 ms because L0 is large.", Double(slowdowns))
        one("block_cache_hits_total", "counter", "Block cache hits.", Double(blockCacheHits))
        one("block_cache_misses_total", "counter", "Block cache misses.", Double(blockCacheMisses))
        one("block_cache_hit_ratio", "gauge", "Hits / (hits + misses).", blockCacheHitRatio)
        one("block_cache_bytes", "gauge", "Bytes held by the block cache.", Double(blockCacheBytes))
        one("block_cache_capacity_bytes", "gauge", "Block cache capacity.", Double(blockCacheCapacity))
        one("block_cache_entries", "gauge", "Blocks held by the block cache.", Double(blockCacheEntries))
        one("block_reads_total", "counter", "Blocks read from table files.", Double(blockReads))
        one("open_tables", "gauge", "Table files open in the table cache.", Double(openTables))
        one("bloom_checks_total", "counter", "Bloom filter probes.", Double(bloomChecks))
        one("bloom_useful_total", "counter", "Probes that ruled a table out.", Double(bloomUsefulNegatives))
        for (name, l) in [("get", getLatency), ("put", putLatency)] {
            out += "# HELP slice_\(name)_latency_microseconds \(name) latency.\n"
            out += "# TYPE slice_\(name)_latency_microseconds summary\n"
            for (q, v) in [("0.5", l.p50), ("0.9", l.p90), ("0.99", l.p99), ("0.999", l.p999), ("1", l.max)] {
                out += "slice_\(name)_latency_microseconds{quantile=\"\(q)\"} \(v)\n"
            }
            out += "slice_\(name)_latency_microseconds_count \(l.count)\n"
        }
        one("torn_wal_tails_total", "counter", "Torn WAL tails dropped at recovery.", Double(tornWALTailsDropped))
        one(
            "obsolete_files_deleted_total", "counter", "Table files deleted after compaction.",
            Double(obsoleteFilesDeleted))
        one("blob_files", "gauge", "Blob files (large values) in the current version.", Double(blobFiles))
        one("blob_live_bytes", "gauge", "Blob bytes still referenced.", Double(blobLiveBytes))
        one(
            "blob_garbage_bytes", "gauge", "Blob bytes of overwritten or deleted values not yet freed.",
            Double(blobGarbageBytes))
        one("blob_bytes_written_total", "counter", "Bytes written to blob files.", Double(blobBytesWritten))
        one("blob_bytes_read_total", "counter", "Value bytes read from blob files.", Double(blobBytesRead))
        one(
            "blob_bytes_relocated_total", "counter", "Live blob bytes moved out of mostly-garbage files.",
            Double(blobBytesRelocated))
        one(
            "blob_reclaimed_bytes_total", "counter", "Bytes of blob files deleted once all their values were garbage.",
            Double(blobBytesReclaimed))
        one(
            "blob_files_sealed_early_total", "counter", "Blob files sealed before full so their garbage could go.",
            Double(blobFilesSealedEarly))
        one(
            "memtable_blob_garbage_bytes", "gauge",
            "Blob bytes that newer memtable entries hide (garbage once flushed, not yet counted).",
            Double(memtableBlobGarbageBytes))
        one(
            "blob_garbage_flushes_total", "counter", "Memtables flushed early because they hid much blob data.",
            Double(blobGarbageFlushes))
        one("idle_flushes_total", "counter", "Memtables flushed after a quiet period.", Double(idleFlushes))
        one(
            "space_reserve_releases_total", "counter", "Times the space reserve was given up on a full disk.",
            Double(spaceReserveReleases))
        one(
            "space_reserve_shortfall_bytes", "gauge", "Bytes of the space reserve given up (0: it is whole).",
            Double(spaceReserveShortfall))
        one(
            "blob_gc_compactions_total", "counter", "Compactions started to collect mostly-garbage blob files.",
            Double(blobGCCompactions))
        one(
            "tombstone_compactions_total", "counter", "Compactions started because a table was mostly deletions.",
            Double(tombstoneCompactions))
        one(
            "periodic_flushes_total", "counter", "Memtables flushed because their oldest write reached the period.",
            Double(periodicFlushes))
        metric(
            "universal_compactions_total", "counter", "Universal compactions by reason.",
            [
                ("{reason=\"space_amplification\"}", Double(universalSpaceAmplificationCompactions)),
                ("{reason=\"size_ratio\"}", Double(universalSizeRatioCompactions)),
                ("{reason=\"run_count\"}", Double(universalRunCountCompactions)),
            ])
        one("blob_values_written_total", "counter", "Values stored in blob files.", Double(blobValuesWritten))
        one(
            "blob_values_staged_total", "counter", "Values staged in blob files ahead of their batch.",
            Double(blobValuesStaged))
        one(
            "blob_files_deleted_total", "counter", "Blob files deleted once all their values were garbage.",
            Double(blobFilesDeleted))
        one(
            "wal_bytes_dropped_total", "counter", "WAL bytes a lenient recovery mode dropped at open.",
            Double(walBytesDroppedByRecovery))
        one(
            "background_error", "gauge", "1 when an I/O error stopped the store (writes fail until it is reopened).",
            backgroundError == nil ? 0 : 1)
        return out
    }

    /// Writes a human-readable summary to standard output.
    public func print() {
        Swift.print(summary)
    }

    public var summary: String {
        var lines: [String] = []
        lines.append(
            "operations: puts \(puts), deletes \(deletes), gets \(gets) (hits \(getHits)), batches \(writeBatches)")
        lines.append(
            "writes: user \(userBytesWritten) B, WAL \(walBytesWritten) B (\(walSyncs) syncs, \(groupCommits) group commits), write amplification \(String(format: "%.2f", writeAmplification))"
        )
        lines.append(
            "memtables: active \(memtableBytes) B, immutable \(immutableMemtables) (\(immutableMemtableBytes) B)")
        for l in levels where l.files > 0 {
            var line = "  L\(l.level): \(l.files) files, \(l.bytes) B"
            if l.compressedBlocks > 0 {
                let ratio = Double(l.uncompressedBytes) / Double(max(1, l.bytes))
                line +=
                    " (uncompressed \(l.uncompressedBytes) B, \(String(format: "%.2f", ratio))x; \(l.compressedBlocks)/\(l.dataBlocks) blocks compressed)"
            }
            lines.append(line)
        }
        lines.append(
            "flushes \(flushes), compactions \(compactions) (running \(compactionsRunning), trivial moves \(trivialMoves), subcompactions \(subcompactions)), read \(compactionBytesRead) B, wrote \(compactionBytesWritten) B"
        )
        if compactionStyle == .universal {
            lines.append(
                "universal compactions: space amplification \(universalSpaceAmplificationCompactions), size ratio \(universalSizeRatioCompactions), run count \(universalRunCountCompactions)"
            )
        }
        for snap in namedSnapshots {
            lines.append("snapshot \(snap.name): \(snap.bytes) B, \(snap.unsharedBytes) B kept only by snapshots")
        }
        lines.append(
            "compaction parallelism: peak \(compaction.peakRunning) jobs at once, \(compaction.overlappedJobs) jobs overlapped another, \(compaction.parallelMerges) parallel merges; manual: \(compaction.manualJobs) jobs, peak \(compaction.manualPeakRunning) at once"
        )
        for l in compaction.levels where l.jobs > 0 {
            lines.append(
                "  into L\(l.level): \(l.jobs) jobs (\(l.trivialMoves) moves), files \(l.filesRead) in / \(l.filesWritten) out, read \(l.bytesRead) B, wrote \(l.bytesWritten) B, \(String(format: "%.3f", Double(l.micros) / 1e6)) s"
            )
        }
        lines.append("stalls \(stalls) (\(stallMicros) us), slowdowns \(slowdowns)")
        lines.append(
            "block cache: hits \(blockCacheHits), misses \(blockCacheMisses), hit ratio \(String(format: "%.3f", blockCacheHitRatio)), \(blockCacheBytes)/\(blockCacheCapacity) B, \(blockCacheEntries) entries; blocks decompressed \(blocksDecompressed)"
        )
        if blobFiles > 0 || blobBytesWritten > 0 {
            lines.append(
                "blobs: \(blobFiles) files, live \(blobLiveBytes) B, garbage \(blobGarbageBytes) B (+\(memtableBlobGarbageBytes) B in memtables), written \(blobBytesWritten) B, read \(blobBytesRead) B, files deleted \(blobFilesDeleted), reclaimed \(blobBytesReclaimed) B, relocated \(blobBytesRelocated) B"
            )
            lines.append(
                "space: garbage flushes \(blobGarbageFlushes), idle flushes \(idleFlushes), periodic flushes \(periodicFlushes), files sealed early \(blobFilesSealedEarly), blob GC compactions \(blobGCCompactions), tombstone compactions \(tombstoneCompactions)"
            )
        }
        if let backgroundError { lines.append("STOPPED by an error (reopen to resume writes): \(backgroundError)") }
        if tornWALTailsDropped > 0 || walBytesDroppedByRecovery > 0 {
            lines.append(
                "recovery: torn WAL tails dropped \(tornWALTailsDropped), damaged WAL bytes dropped \(walBytesDroppedByRecovery)"
            )
        }
        lines.append("bloom: checks \(bloomChecks), useful negatives \(bloomUsefulNegatives)")
        lines.append(
            "get latency us: p50 \(getLatency.p50) p99 \(getLatency.p99) p99.9 \(getLatency.p999) max \(getLatency.max)"
        )
        lines.append(
            "put latency us: p50 \(putLatency.p50) p99 \(putLatency.p99) p99.9 \(putLatency.p999) max \(putLatency.max)"
        )
        return lines.joined(separator: "\n")
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let m = Foundation.pow(10, Double(places))
        return (self * m).rounded() / m
    }
}
