/// Everything tunable about a store. Every default says why it is what it is.
public struct Options: Sendable {
    /// When a write is acknowledged relative to the disk.
    public enum SyncPolicy: String, Sendable, Codable {
        /// Acknowledge after `write(2)` to the WAL: survives a crash of the process (the OS page
        /// cache keeps the data), not a power cut. Call `sync()` to make earlier writes durable.
        case none
        /// Acknowledge after the WAL is `fdatasync`ed: survives a power cut. Group commit shares
        /// one sync among all writers waiting at that moment.
        case always
    }

    /// Size at which the active memtable is frozen and queued for flushing. 64 MiB: large enough
    /// that L0 files are few and big, small enough that recovery replays a WAL in about a second.
    public var memtableSize = 64 << 20
    /// Frozen memtables that may wait for flushing before writers stall. 1, as in LevelDB:
    /// memtables then take at most 2 x memtableSize, and a flush (about a second for 64 MiB
    /// here) finishes before the next memtable fills at full write speed, so writers rarely
    /// stall (`stalls` in the stats says when they do; raise this to absorb longer bursts).
    public var maxImmutableMemtables = 1
    /// Block cache capacity in bytes. 64 MiB holds the hot index and data blocks of a few GiB of data.
    public var blockCacheBytes = 64 << 20
    /// Target size of a data block before the trailer. 4 KiB matches the page size, so a point
    /// read costs one page.
    public var blockSize = 4096
    /// Keys between restart points in a block. 16: short binary-search tail, good prefix compression.
    public var blockRestartInterval = 16
    /// Bloom filter bits per key; 0 disables filters. 10 gives about 1% false positives.
    public var bloomBitsPerKey = 10
    /// Compression of table data blocks by level: entry i for level i, levels past the end take
    /// the last entry. Default none for L0 and L1, LZ4 below (RocksDB's advice): L0 and L1 are
    /// rewritten most often and hold the newest, most read data, and a store of up to a few
    /// hundred MiB lives there whole, so its blocks stay zero-copy views of the mapped file; the
    /// deeper levels hold about 90% of a large store, where LZ4 saves space (tables at 80% of
    /// raw on half-compressible values) for about 1.4 µs of decompression per 4 KiB block read
    /// from disk (BENCHMARKS.md "Compression"; hits in the block cache are kept decompressed).
    public var compressionPerLevel: [Compression] = [.none, .none, .lz4]
    /// Replaces the level's setting (when that is not `.none`) for tables written into the
    /// deepest level holding data, where most of a large store ends up and is rewritten
    /// least (RocksDB's advice). zstd: smaller than LZ4 (77% of raw against 80% on the
    /// benchmark's values), for about 6 µs per 4 KiB block read from disk
    /// instead of 1.4. nil: the level's setting.
    public var bottommostCompression: Compression? = .zstd
    /// zstd's compression level (1...19). 3, zstd's own default: most of the ratio of the
    /// higher levels at several times their speed.
    public var zstdLevel = 3
    /// Durability of each acknowledged write; see `SyncPolicy`.
    public var syncPolicy: SyncPolicy = .none
    /// L0 file count that triggers an L0 -> L1 compaction. 4, as LevelDB and RocksDB: L0 files
    /// overlap, so every one is read by a miss.
    public var l0CompactionTrigger = 4
    /// L0 file count at which each write is delayed 1 ms, to let compaction catch up gently.
    public var l0SlowdownTrigger = 8
    /// L0 file count at which writes stop until compaction brings it down: bounds read cost.
    public var l0StopTrigger = 12
    /// Each level may hold this many times the bytes of the one above. 10: write amplification
    /// of about 10 per level against 1.1x space amplification.
    public var levelSizeRatio = 10
    /// Bytes L1 may hold before compacting into L2. 256 MiB, the size of four full L0 files, so
    /// an L0 -> L1 compaction does not immediately overflow L1.
    public var level1MaxBytes = 256 << 20
    /// Size at which compaction starts a new output file. 32 MiB keeps file counts (and open
    /// descriptors) low while a single-file compaction stays short.
    public var targetFileSize = 32 << 20
    /// Number of levels. 7 with ratio 10 reaches petabytes.
    public var numLevels = 7
    /// Read table files through a read-only memory mapping instead of `pread`. true: a block
    /// read is then a checksum over mapped pages, with no system call, copy or allocation
    /// (LevelDB's default on 64-bit; about a quarter of a random get here). The catch: a disk
    /// error on a mapped page kills the process with SIGBUS instead of failing one read with
    /// EIO; set false where that matters more than read speed (`check` always uses `pread`).
    public var mmapReads = true
    /// Append to the WAL by copying into a shared mapping of it (grown 4 MiB at a time, space
    /// allocated before it is mapped) instead of one `write(2)` per group commit. true: a small
    /// put no longer pays for a system call (~1.2 µs, 40% of `fillseq` here), and what a crash
    /// of the process keeps is the same, since copied bytes are in the page cache at once.
    /// The MANIFEST is always written with `write(2)`.
    public var mmapWrites = true
    /// Open table files kept in the table cache. Well below this machine's 20,000 per process.
    public var maxOpenFiles = 5000
    /// Largest value accepted. Unlimited by default (values at or above `blobThreshold` go to
    /// blob files, so size is bounded by the disk); set it to refuse larger values.
    public var maxValueSize = Int.max
    /// Largest chunked value (an indirect entry, see `ChunkedValue`) that a whole read (`get`,
    /// a scan with values) assembles in memory; larger ones fail with `.invalidArgument` and are
    /// read in pieces with `read(_:offset:into:)`. 1 GiB: a chunked value is sized by its header,
    /// not by the bytes stored, so a sparse file of 1 TiB costs nothing on disk but cannot be
    /// returned whole; the bound turns that into an error before anything is allocated.
    public var maxIndirectReadBytes = 1 << 30
    /// Values of at least this many bytes are stored in blob files, and the LSM keeps a
    /// 20-byte reference (key-value separation). 32 KiB: below it a value is cheap to rewrite in
    /// compaction and is best read through the block cache; above it compaction's rewrites
    /// dominate the cost of writing it (measured in BENCHMARKS.md, "Blob threshold").
    public var blobThreshold = 32 << 10
    /// A blob file stops taking new values past this size. 256 MiB: few files for large data,
    /// while a file whose values are all overwritten is freed in one piece.
    public var blobFileSize = 256 << 20
    /// A memtable is frozen and flushed early once the blob values that newer entries in it
    /// overwrite or delete add up to this many bytes (record bytes). Why: a large value's
    /// entry is a ~30-byte reference, so rewriting one value never fills a memtable by
    /// memory, and the versions it hides are garbage nobody counts until a flush drops them;
    /// this bounds that uncounted garbage at this much per memtable. 16 MiB: a flush then
    /// costs a few syncs and a tiny table per 16 MiB overwritten (at this disk's ~350 MB/s,
    /// about 20 a second at full speed), while a rewritten value's old bytes come back within
    /// tens of milliseconds (measured in BENCHMARKS.md, "Space").
    public var memtableGarbageTrigger = 16 << 20
    /// L0 files whose references cover this many blob bytes in all are compacted into L1 as if
    /// `l0CompactionTrigger` files had piled up. Why: older versions a new L0 table hides in
    /// deeper tables are counted as garbage only when compaction merges them, so a file
    /// rewritten whole a few times between flushes would otherwise keep every old copy until
    /// four L0 files accumulate. 64 MiB: compacting L0 rewrites only references (~40 bytes per
    /// value of at least `blobThreshold`), a small cost beside the blob bytes it gives back.
    public var l0BlobBytesTrigger = 64 << 20
    /// A memtable that refers to blob values, or deletes keys of a store with blob files, is
    /// flushed after this many seconds without writes, so what it overwrote or deleted comes
    /// back without waiting for more writes. 1 s: long enough that a burst of writes is not
    /// split into many small tables, short enough that an `rm` frees its space promptly.
    public var idleFlushSeconds = 1.0
    /// A memtable whose oldest write is this many seconds old is flushed, however little it
    /// holds: the bound on how long a write lives only in the WAL (with `SyncPolicy.none`,
    /// only in the page cache: a power cut loses at most this much of a slow write stream;
    /// and it bounds what the next open replays). 600 s: a trickle of writes then costs one
    /// small L0 table per ten minutes (four of them, merged into L1, per forty), while a
    /// store written steadily flushes by size long before. (A one-second period, the seed's,
    /// makes a trickle of writes an L0 table a second and an L0 -> L1 merge every four.)
    /// nil: flush by size (and `idleFlushSeconds`) only, as LevelDB.
    public var periodicFlushSeconds: Double? = 600
    /// Bytes kept allocated in a `RESERVE` file, given up when the disk is full so that
    /// deletions, recovery and the flushes and compactions that free space can still run
    /// (`SpaceReserve`); taken again once three times as much is free. 0: none.
    public var spaceReserve = 8 << 20
    /// Background compaction settings.
    public var compaction = CompactionConfig()

    /// What opening the store does when a WAL is damaged (RocksDB's `WALRecoveryMode`); see
    /// `WALRecovery`. The default never drops a write that was synced.
    public var walRecovery: WALRecovery = .tolerateTornTail

    /// Open without writing anything: no new MANIFEST or WAL, no flush or compaction, WALs
    /// replayed into memory only; writes fail with `.readOnly`. For reading a store on a full
    /// disk, checking one without changing it, and `mount -o ro`.
    public var readOnly = false

    /// The MANIFEST is rewritten as a snapshot of the current state once it grows past this.
    /// 64 MiB: rolls are rare, and replaying the manifest at open stays well under a second.
    package var manifestRollBytes: Int64 = 64 << 20

    /// Where every file operation goes: the operating system (`PosixFileLayer`) in production;
    /// tests put a `FaultInjectingFileLayer` here to fail calls, tear writes and cut power.
    package var fileLayer: any FileLayer = PosixFileLayer.shared

    /// Largest key accepted: 64 KiB (keys sit in index blocks and in memory uncompressed).
    public static let maxKeySize = 64 << 10

    public init() {}

    func validate() throws {
        func check(_ ok: Bool, _ what: String) throws {
            if !ok { throw SliceError(.invalidArgument, "invalid option: \(what)") }
        }
        try check(memtableSize >= 4096, "memtableSize must be at least 4096")
        try check(maxImmutableMemtables >= 1, "maxImmutableMemtables must be at least 1")
        try check(blockCacheBytes >= 0, "blockCacheBytes must not be negative")
        try check(blockSize >= 256, "blockSize must be at least 256")
        try check(blockRestartInterval >= 1, "blockRestartInterval must be at least 1")
        try check((0...64).contains(bloomBitsPerKey), "bloomBitsPerKey must be 0...64")
        try check(l0CompactionTrigger >= 1, "l0CompactionTrigger must be at least 1")
        try check(l0SlowdownTrigger >= l0CompactionTrigger, "l0SlowdownTrigger must be >= l0CompactionTrigger")
        try check(l0StopTrigger >= l0SlowdownTrigger, "l0StopTrigger must be >= l0SlowdownTrigger")
        try check(levelSizeRatio >= 2, "levelSizeRatio must be at least 2")
        try check(level1MaxBytes >= 1024, "level1MaxBytes must be at least 1024")
        try check(targetFileSize >= 1024, "targetFileSize must be at least 1024")
        try check((2...20).contains(numLevels), "numLevels must be 2...20")
        try check(maxOpenFiles >= 16, "maxOpenFiles must be at least 16")
        try check(maxValueSize >= 0, "maxValueSize must not be negative")
        try check(maxIndirectReadBytes >= 0, "maxIndirectReadBytes must not be negative")
        try check(blobThreshold >= 1, "blobThreshold must be at least 1")
        try check(blobFileSize >= 1 << 16, "blobFileSize must be at least 64 KiB")
        try check(memtableGarbageTrigger >= 1 << 16, "memtableGarbageTrigger must be at least 64 KiB")
        try check(l0BlobBytesTrigger >= 1 << 16, "l0BlobBytesTrigger must be at least 64 KiB")
        try check(idleFlushSeconds > 0, "idleFlushSeconds must be positive")
        try check(periodicFlushSeconds.map { $0 > 0 } ?? true, "periodicFlushSeconds must be positive")
        try check(spaceReserve >= 0, "spaceReserve must not be negative")
        try check(!compressionPerLevel.isEmpty, "compressionPerLevel must have at least one entry")
        try check((1...19).contains(zstdLevel), "zstdLevel must be 1...19")
        try compaction.validate()
    }

    /// The compression of tables written into `level`; `bottommost`: no level below it holds data.
    func compression(forLevel level: Int, bottommost: Bool) -> Compression {
        let configured = compressionPerLevel[min(level, compressionPerLevel.count - 1)]
        guard bottommost, configured != .none, let bottom = bottommostCompression else { return configured }
        return bottom
    }

    /// Sets every level to `c` (the CLI's and the mount's `compression=` option): `.none`
    /// turns compression off everywhere, bottommost included.
    public mutating func setCompression(_ c: Compression) {
        compressionPerLevel = [c]
        bottommostCompression = nil
    }

    /// Bytes a level may hold before it is compacted into the next (L1 and deeper).
    func maxBytes(forLevel level: Int) -> Double {
        var result = Double(level1MaxBytes)
        var l = level
        while l > 1 {
            result *= Double(levelSizeRatio)
            l -= 1
        }
        return result
    }
}

/// How background and manual compactions use threads.
///
/// What each setting does today:
/// - `maxConcurrentCompactions`: number of background compaction threads. Each picks a job
///   whose input files and output key range do not overlap a running job, so jobs on different
///   levels (or disjoint ranges of one level) run at the same time.
/// - `enableParallelMerge` and `mergeParallelism`: a job whose inputs exceed two target file
///   sizes is split at input-file boundaries into up to `mergeParallelism` key ranges that are
///   merged on separate threads (RocksDB's subcompactions); outputs are installed together.
/// - `maxSSTablesPerJob`: at most this many L0 files go into one L0 -> L1 job (the oldest
///   ones, so newer files stay above), and a manual `compact()` processes each level in chunks
///   of this many files, bounding the size and memory of any single job.
public struct CompactionConfig: Sendable {
    /// How the tree is shaped; see `CompactionStyle`. Can be changed on an existing store at
    /// any open: both styles read any shape the other leaves (every level is a sorted run,
    /// newer above older), and the new style's picker reshapes the tree as it goes.
    public var style: CompactionStyle = .leveled
    /// Universal compaction's settings (used when `style` is `.universal`).
    public var universal = UniversalCompactionOptions()
    public var maxConcurrentCompactions: Int
    public var mergeParallelism: Int
    public var maxSSTablesPerJob: Int
    public var enableParallelMerge: Bool
    /// CPU priority (Linux nice, 0...19) of compaction threads and their subcompactions. 10:
    /// compaction takes spare CPU and yields it to foreground reads and writes (RocksDB's
    /// `LowerThreadPoolCPUPriority`); on this 2-vCPU machine two full-speed merges otherwise
    /// slowed the reads that ran beside them. 0: same priority as everything else.
    public var threadNice = 10

    public init(
        maxConcurrentCompactions: Int = 2, mergeParallelism: Int = 4, maxSSTablesPerJob: Int = 10,
        enableParallelMerge: Bool = true
    ) {
        self.maxConcurrentCompactions = maxConcurrentCompactions
        self.mergeParallelism = mergeParallelism
        self.maxSSTablesPerJob = maxSSTablesPerJob
        self.enableParallelMerge = enableParallelMerge
    }

    func validate() throws {
        try universal.validate()
        guard (1...64).contains(maxConcurrentCompactions), (1...64).contains(mergeParallelism),
            maxSSTablesPerJob >= 2, (0...19).contains(threadNice)
        else {
            throw SliceError(
                .invalidArgument,
                "invalid CompactionConfig: maxConcurrentCompactions and mergeParallelism must be 1...64, maxSSTablesPerJob >= 2, threadNice 0...19"
            )
        }
    }
}

/// The shape compaction keeps the tree in.
public enum CompactionStyle: String, Sendable, Codable, CaseIterable {
    /// LevelDB's and RocksDB's default: each level holds about `levelSizeRatio` times the one
    /// above, and a compaction merges a slice of one level into the overlapping files of the
    /// next. Least space (about 1.1x the live data) and fewest runs to search, for a write
    /// amplification of about `levelSizeRatio` per level.
    case leveled
    /// Size-tiered, after RocksDB's universal compaction: the tree is a stack of sorted runs
    /// (each L0 file, and each non-empty level below, older deeper), and a compaction merges
    /// runs of similar size, neighbours in age, into one. Less rewriting (write amplification
    /// 5.15 against leveled's 5.98 on 2 GiB of fill and overwrites, BENCHMARKS.md) for more
    /// space (1.44x against 1.18x; bounded by `maxSizeAmplificationPercent`) and more runs
    /// for a read to search.
    case universal
}

/// Settings of universal compaction (RocksDB's names and defaults).
public struct UniversalCompactionOptions: Sendable {
    /// A run joins the merge when it is at most this percent larger than the runs picked
    /// before it together. 1: runs merge only with their like.
    public var sizeRatioPercent = 1
    /// Fewest and most runs one merge takes (size-ratio merges).
    public var minMergeWidth = 2
    public var maxMergeWidth = Int.max
    /// When the runs above the oldest one add up to more than this percent of it, everything
    /// is merged into one run: the bound on space amplification (200: at most 3x the oldest run).
    public var maxSizeAmplificationPercent = 200

    public init() {}

    func validate() throws {
        guard sizeRatioPercent >= 0, minMergeWidth >= 2, maxMergeWidth >= minMergeWidth,
            maxSizeAmplificationPercent >= 1
        else {
            throw SliceError(
                .invalidArgument,
                "invalid UniversalCompactionOptions: sizeRatioPercent >= 0, 2 <= minMergeWidth <= maxMergeWidth, maxSizeAmplificationPercent >= 1"
            )
        }
    }
}

/// What recovery does with a damaged write-ahead log (RocksDB's `WALRecoveryMode`).
///
/// A crash leaves the end of the newest WAL unwritten (cut short, or zeros): that is a **torn
/// tail**, the write it held was never acknowledged as durable, and every mode drops it with a
/// warning. Anything else — a complete record whose checksum fails, damage with good records
/// after it, a log shorter than it was synced to — is **damage**, and the modes differ:
public enum WALRecovery: String, Sendable, Codable, CaseIterable {
    /// Default: damage is `.corruption` (open fails, nothing is changed), naming file and offset.
    case tolerateTornTail
    /// Even a torn tail is corruption: for stores where every write was synced and any
    /// difference must be looked at.
    case absoluteConsistency
    /// Replay up to the first damage and drop everything after it, in that log and later ones:
    /// the store comes back as it was at one point in time.
    case pointInTime
    /// Skip damaged records and replay the rest (may break the atomicity of the lost batches
    /// with later ones).
    case skipDamagedRecords
}
