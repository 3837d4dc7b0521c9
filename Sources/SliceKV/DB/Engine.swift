import CSliceKV
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The synchronous, thread-safe core of a store. `LSMTree` is the public face (sync and async);
/// FUSE worker threads and the CLI call this directly.
///
/// Threads: any number of callers; one flush thread; `maxConcurrentCompactions` compaction
/// threads. None of them run on Swift's cooperative pool.
///
/// Locking rules:
/// - `lock` guards every field marked "guarded by lock", and is the one condition variable all
///   waits use (writers queueing, stalls, background threads, `flush()`). Hold it only briefly:
///   no disk I/O under it except creating a new WAL file on a memtable switch.
/// - `manifestLock` serialises version edits and is held across manifest I/O. Order:
///   `manifestLock` before `lock`, never the reverse.
/// - The WAL writer and the active memtable are written only by the group-commit leader (the
///   writer at the head of `writers`), which does so without holding `lock`.
final class Engine: @unchecked Sendable {
    let path: String
    let options: Options
    /// Every file operation goes through this (`Options.fileLayer`).
    var fileLayer: any FileLayer { options.fileLayer }
    let counters = EngineCounters()
    let blockCache: BlockCache
    let tableCache: TableCache
    let blobStore: BlobStore
    let versions: VersionSet
    let lock = ConditionLock()
    let manifestLock = ConditionLock()
    private let directoryLock: DirectoryLock

    // Guarded by lock. The fields every write touches opt out of dynamic exclusivity checks
    // (`@exclusivity(unchecked)`): the lock already serialises them, and the checks measured
    // as 5% of a small put.
    @exclusivity(unchecked) private var mem: Memtable
    @exclusivity(unchecked) private var imm: [Memtable] = []
    @exclusivity(unchecked) private var wal: LogWriter
    @exclusivity(unchecked) private(set) var lastSequence: SequenceNumber = 0
    @exclusivity(unchecked) private var writers: [Writer] = []
    /// `writers.count`, readable without the lock (written under it): a write that must not
    /// wait polls it briefly instead of giving up at once (`writeIfUncontended`).
    private let queuedWriters = Atomic<Int>(0)
    /// The leader's group batch, reused so a write allocates nothing here (leader only).
    @exclusivity(unchecked) private var groupBuffer: [UInt8] = []
    private var snapshots: [SequenceNumber: Int] = [:]
    @exclusivity(unchecked) private var backgroundError: SliceError?
    /// Why the last flush failed when it is being retried (out of space): `flush()` and
    /// writers stalled behind a full immutable queue fail with it rather than wait for space.
    private var flushRetryError: SliceError?
    /// Flush attempts finished (either way), so a waiter can tell a fresh outcome from an old one.
    private var flushAttempts = 0
    @exclusivity(unchecked) private var shuttingDown = false
    /// Mirrors `shuttingDown` for long loops that run without the lock (compaction merges).
    let stopping = Atomic<Bool>(false)
    /// Set when the memtable hides `memtableGarbageTrigger` blob bytes but could not be
    /// frozen right after the write that got it there (see `freezeIfHidingGarbage`).
    private let garbageFreezePending = Atomic<Bool>(false)
    @exclusivity(unchecked) private var closed = false
    private var liveThreads = 0
    var runningCompactions: [CompactionJob] = []
    /// Totals and parallelism of compaction jobs. Guarded by lock.
    lazy var compactionStats = CompactionStats(numLevels: options.numLevels)
    var manualCompactionActive = false
    /// Serializes creating and deleting named snapshots (`NamedSnapshots.swift`).
    let snapshotChanges = Locked<Void>(())
    var pendingOutputs: Set<UInt64> = []
    /// Disk space kept for getting out of a full disk (`Options.spaceReserve`).
    let reserve: SpaceReserve
    /// No compaction starts before this (monotonic ns): set for a second after one failed (for
    /// space, or a passing I/O error), so that jobs that cannot succeed do not follow each
    /// other without pause (each failure wakes the other background threads). Guarded by lock.
    var compactionBackoffUntil: UInt64 = 0
    /// Set when a garbage collection failed for space, cleared when one succeeds: until then
    /// compactions of deletions go first (they can free whole files, which takes no room) and
    /// collections take one file at a time (moving its survivors needs at most one blob file of
    /// room; see `Options.spaceReserve`). Guarded by lock.
    var garbageCollectionShortOfSpace = false
    /// Blob files that writes being validated and committed copy references into. Guarded by lock.
    private var pinnedCopies: [UInt64: Int] = [:]
    /// Blob files an edit being written to the MANIFEST deletes: decided under `lock`, but
    /// installed only after the MANIFEST write, which runs without it. A copy validated in
    /// between must not pin such a file (it would be deleted under the copy's memtable entry),
    /// so validation treats it as gone already. Guarded by lock.
    private var blobDeletesInFlight: Set<UInt64> = []

    /// Notes from recovery (torn WAL tails dropped), for logs and `slice check`.
    private(set) var recoveryNotes: [String] = []
    /// WALs a read-only open replayed (and keeps in place): `check` verifies their values too.
    private var replayedLogs: [UInt64] = []

    /// A queued write. Fields are touched only under `lock`.
    private final class Writer {
        @exclusivity(unchecked) var batch: WriteBatch
        let sync: Bool
        /// A request to freeze the memtable (for `flush()`) instead of a write.
        let freeze: Bool
        @exclusivity(unchecked) var done = false
        @exclusivity(unchecked) var error: SliceError?
        /// Set (under `lock`) when the writer is done or has reached the head of the queue:
        /// what a queued writer polls before it sleeps (`awaitTurn`).
        let turn = Atomic<Bool>(false)

        init(batch: WriteBatch, sync: Bool, freeze: Bool = false) {
            self.batch = batch
            self.sync = sync
            self.freeze = freeze
        }
    }

    init(path: String, options: Options) throws {
        try options.validate()
        self.path = path
        self.options = options
        if !options.readOnly {
            // Private to the owner: the tables hold the data of files that are private in the mount.
            try options.fileLayer.createDirectory(path, mode: 0o700)
        } else if !options.fileLayer.exists(FileNames.current(path)) {
            throw SliceError(.invalidArgument, "no store here (no CURRENT file)", path: path)
        }
        directoryLock = try DirectoryLock(
            path: FileNames.lock(path), layer: options.fileLayer, readOnly: options.readOnly)
        reserve = SpaceReserve(
            directory: path, bytes: options.readOnly ? 0 : options.spaceReserve, layer: options.fileLayer)
        blockCache = BlockCache(capacityBytes: options.blockCacheBytes)
        tableCache = TableCache(
            directory: path, capacity: options.maxOpenFiles, blockCache: blockCache, counters: counters,
            mmapReads: options.mmapReads, layer: options.fileLayer)
        let blobReaders = BlobReaderCache(
            directory: path, capacity: max(16, options.maxOpenFiles / 8), layer: options.fileLayer)
        let deleter = FileDeleter(
            directory: path, tableCache: tableCache, blobReaders: blobReaders, counters: counters)
        blobStore = BlobStore(
            directory: path, options: options, readers: blobReaders, deleter: deleter, counters: counters)
        versions = VersionSet(directory: path, options: options, deleter: deleter, blobStore: blobStore)
        mem = Memtable(logNumber: 0, expectedBytes: options.memtableSize)
        // Placeholder until recovery opens the real WAL; never written.
        wal = LogWriter(file: try PosixFileLayer.shared.open("/dev/null", flags: O_WRONLY, mode: 0))
        // Recovery writes (a table for what the WALs hold, a MANIFEST, a new WAL): on a disk
        // with less than two steps of the reserve free, steps of it are given up first.
        while !options.readOnly, let free = reserve.freeBytes(), free < 2 * reserve.step, releaseReserve() {}
        try recover()
        if !options.readOnly {
            reserve.ensure()
            startThreads()
        }
    }

    /// Gives up the space reserve after a failure for space; returns whether that freed
    /// anything (so the failed work is worth trying again). May be called with `lock` held
    /// (the reserve has its own lock and takes no other).
    @discardableResult
    func releaseReserve() -> Bool {
        guard reserve.release() else { return false }
        counters.spaceReserveReleases.add(1, ordering: .relaxed)
        return true
    }

    /// Refuses a write that does not free space when the space reserve has been given up in
    /// part and the disk does not have that part free beyond this write: those bytes are kept
    /// for deletions and the work that frees space (`SpaceReserve`). Writes of at most
    /// `SpaceReserve.smallWrite` bytes are let through (a create, a chmod: ext4 too lets those
    /// through on a full disk while it has room for them). Costs a `statvfs` only while part of
    /// the reserve is given up.
    func checkReserve(bytes: Int) throws {
        let shortfall = reserve.shortfall
        guard shortfall > 0, !reserve.ensure() else { return }
        if let free = reserve.freeBytes(), free - shortfall < bytes + reserve.step {
            throw SliceError(
                .noSpace, "the disk is full: its last \(shortfall >> 10) KiB are kept for deletions", path: path)
        }
    }

    /// Takes the space reserve again if it was given up and the disk has room (after work that
    /// deleted files). Not called with `lock` held.
    func restoreReserve() {
        if !reserve.isWhole { reserve.ensure() }
    }

    /// Throws `.readOnly` when the store was opened read-only.
    func ensureWritable() throws {
        if options.readOnly { throw SliceError(.readOnly, "the store was opened read-only", path: path) }
    }

    // MARK: Recovery

    private func recover() throws {
        // (A read-only open has checked for CURRENT already, in `init`.)
        let existing = try versions.recover()
        // Files created after the last MANIFEST edit (a WAL, a blob file being filled) carry
        // numbers the manifest's next-file number may not cover: never hand those out again
        // (a new blob file with a live one's number would truncate it).
        for name in try fileLayer.contents(of: path) {
            if let (_, n) = FileNames.parse(name) { versions.markFileNumberUsed(n) }
        }
        if !existing {
            try versions.writeSnapshot(of: versions.current)
        }
        let version = versions.current
        for level in version.levels {
            for f in level {
                let file = FileNames.table(path, f.number)
                guard let size = fileLayer.fileSize(file) else {
                    throw SliceError.corruption("table file listed in the manifest is missing", path: file)
                }
                guard UInt64(size) == f.size else {
                    throw SliceError.corruption("table file is \(size) bytes, the manifest says \(f.size)", path: file)
                }
            }
        }
        for n in version.blobs.keys where !fileLayer.exists(FileNames.blob(path, n)) {
            throw SliceError.corruption("blob file listed in the manifest is missing", path: FileNames.blob(path, n))
        }
        var logs: [UInt64] = []
        for name in try fileLayer.contents(of: path) {
            if let (kind, n) = FileNames.parse(name), kind == .log, n >= versions.logNumber { logs.append(n) }
        }
        logs.sort()

        var edit = VersionEdit()
        var maxSequence = versions.lastSequence
        var memtable = Memtable(logNumber: 0, expectedBytes: options.memtableSize)
        func flushRecovered() throws {
            // A read-only open keeps everything it replays in memory.
            guard !memtable.isEmpty, !options.readOnly else { return }
            // No snapshot exists yet: only the newest version of each key is kept.
            let (file, deltas) = try writeLevel0Table(
                memtable, number: versions.newFileNumber(), snapshots: SnapshotList([]))
            if let file { edit.newFiles.append(file) }
            edit.blobDeltas.merge(deltas)
            memtable = Memtable(logNumber: 0, expectedBytes: options.memtableSize)
        }
        // How far each WAL is known to have been synced: the length recorded when the store
        // was closed, or in the first record of the WAL that followed it.
        var knownLengths = versions.closedLogs
        for number in logs.dropFirst() {
            if let p = try LogReader.previousLog(of: FileNames.log(path, number), layer: fileLayer) {
                knownLengths[p.number] = max(knownLengths[p.number] ?? 0, p.length)
            }
        }
        var blobSizes: [UInt64: Int64] = [:]
        var setAside: [UInt64] = []
        var stopped = false
        for (i, number) in logs.enumerated() {
            let logPath = FileNames.log(path, number)
            if stopped {
                // Point-in-time recovery stopped in an older log: nothing after it is replayed.
                setAside.append(number)
                recoveryNotes.append("did not replay \(logPath): recovery stopped at damage in an older log")
                counters.walBytesDropped.add(Int(fileLayer.fileSize(logPath) ?? 0), ordering: .relaxed)
                continue
            }
            let newest = i == logs.count - 1
            let mode: LogReader.Mode =
                switch options.walRecovery {
                case .tolerateTornTail: newest ? .tolerateTornTail : .strict
                case .absoluteConsistency: .strict
                case .pointInTime: .pointInTime
                case .skipDamagedRecords: .skipDamaged
                }
            let reader = LogReader(
                path: logPath, mode: mode, layer: fileLayer, knownSyncedLength: knownLengths[number] ?? 0)
            let result = try reader.read { record in
                let batch = WriteBatch(rep: record)
                guard record.count >= WriteBatch.headerSize else {
                    throw SliceError.corruption("WAL record too short for a batch", path: logPath)
                }
                // A reference to blob bytes that are not on the disk (a power cut took them
                // with syncPolicy none) ends the durable part of the log here.
                try batch.forEach(path: logPath) { kind, _, value in
                    guard kind == .blobReference else { return }
                    guard let ref = BlobReference(decoding: value) else {
                        throw SliceError.corruption("bad blob reference in WAL", path: logPath)
                    }
                    let blobPath = FileNames.blob(path, ref.fileNumber)
                    let size =
                        blobSizes[ref.fileNumber]
                        ?? {
                            let s = fileLayer.fileSize(blobPath) ?? -1
                            blobSizes[ref.fileNumber] = s
                            return s
                        }()
                    let end = Int64(ref.offset + ref.diskBytes)
                    if size < end {
                        throw LogReader.EndOfDurableLog(
                            reason: size < 0
                                ? "a record refers to blob file \(blobPath), which does not exist"
                                : "a record refers to bytes \(ref.offset)..<\(end) of blob file \(blobPath), which has \(size)"
                        )
                    }
                }
                let first = batch.sequence
                var seq = first
                try batch.forEach(path: logPath) { kind, key, value in
                    if kind == .blobReference, let ref = BlobReference(decoding: value) {
                        memtable.hold(blobStore.file(ref.fileNumber), copy: ref.isCopy)
                    }
                    memtable.add(seq, kind, key: key, value: value)
                    seq += 1
                }
                if seq > first { maxSequence = max(maxSequence, seq - 1) }
                if memtable.approximateMemoryUsage > options.memtableSize { try flushRecovered() }
            }
            if let torn = result.tornTailOffset {
                counters.tornWALTails.add(1, ordering: .relaxed)
                recoveryNotes.append(
                    "warning: dropped an unfinished write at the end of \(logPath) at offset \(torn) (never synced: "
                        + "a crash or power cut during a write)")
            }
            if !result.dropped.isEmpty {
                setAside.append(number)
                for d in result.dropped {
                    counters.walBytesDropped.add(Int(d.bytes), ordering: .relaxed)
                    recoveryNotes.append(
                        "DROPPED \(d.bytes) bytes of \(logPath) at offset \(d.offset) (\(d.reason)); "
                            + "walRecovery \(options.walRecovery.rawValue)")
                }
                if mode == .pointInTime { stopped = true }
            }
        }
        lastSequence = maxSequence
        if options.readOnly {
            mem = memtable
            replayedLogs = logs.filter { !setAside.contains($0) }
            return
        }
        try flushRecovered()

        let logNumber = versions.newFileNumber()
        wal = try newWAL(logNumber)
        mem = Memtable(logNumber: logNumber, expectedBytes: options.memtableSize)
        edit.logNumber = logNumber
        edit.lastSequence = maxSequence
        sealBlobFilesAfterCrash(&edit)
        addBlobDeletions(&edit, base: versions.current, pending: [])
        let next = versions.current.applying(edit, deleter: versions.deleter, blobFile: blobStore.file)
            .reusingFiles(of: versions.current)
        try versions.writeSnapshot(of: next, extra: edit)
        versions.install(next, edit: edit)
        // Evidence: a log recovery dropped damaged records from is kept (renamed aside, out of
        // reach of the cleanup below) until the user removes it.
        for n in setAside {
            let from = FileNames.log(path, n)
            let to = from + FileNames.damagedSuffix
            try fileLayer.rename(from, to: to)
            recoveryNotes.append("kept \(to) (what recovery dropped is in it); remove it when done")
        }
        try fileLayer.syncDirectory(path)
        removeObsoleteFiles()
    }

    /// Blob files left open by the last run (it crashed, or stopped with an error) get sealed
    /// at their size on disk; whatever in them no entry refers to (the tail of a put that never
    /// committed) is counted as garbage at once, so nothing leaks. Every replayed reference is
    /// already linked by the recovery flush in `edit`.
    private func sealBlobFilesAfterCrash(_ edit: inout VersionEdit) {
        var accounts = versions.current.blobs
        BlobFileAccount.apply(edit, to: &accounts)
        for (n, a) in accounts.sorted(by: { $0.key < $1.key }) where a.sealedBytes == nil {
            let size = fileLayer.fileSize(FileNames.blob(path, n)) ?? 0
            let recordBytes = UInt64(max(0, size - Int64(BlobFormat.headerSize)))
            if recordBytes < a.linkedBytes {
                recoveryNotes.append(
                    "blob file \(FileNames.blob(path, n)) is shorter than the values it holds (\(recordBytes) < \(a.linkedBytes) bytes)"
                )
            }
            edit.blobSeals.append((n, max(recordBytes, a.linkedBytes)))
            if recordBytes > a.linkedBytes {
                edit.blobDeltas.merge([n: BlobDelta(linked: 0, garbage: recordBytes - a.linkedBytes)])
            }
        }
    }

    /// Adds a delete for every blob file whose bytes are all garbage after `edit`, unless a
    /// memtable (or a write in progress) holds a copied reference into it that is not counted
    /// yet (`pending`): that copy keeps the file. REQUIRES: `base` is the version `edit`
    /// applies to.
    /// The deletions are in flight (`blobDeletesInFlight`) until `endBlobDeletions`.
    /// REQUIRES: lock held.
    func addBlobDeletions(_ edit: inout VersionEdit, base: Version, pending: Set<UInt64>) {
        var accounts = base.blobs
        BlobFileAccount.apply(edit, to: &accounts)
        for (n, a) in accounts.sorted(by: { $0.key < $1.key }) where a.isDead && !pending.contains(n) {
            edit.blobDeletes.append(n)
            blobDeletesInFlight.insert(n)
        }
    }

    /// Called once the edit that `addBlobDeletions` filled is installed or has failed.
    /// REQUIRES: lock held.
    func endBlobDeletions(_ edit: VersionEdit) {
        blobDeletesInFlight.subtract(edit.blobDeletes)
    }

    /// Blob files with copied references not yet counted: in memtables (but `flushing`, whose
    /// copies the edit being made counts) or in writes being validated. REQUIRES: lock held.
    func blobFilesWithPendingCopies(except flushing: Memtable? = nil) -> Set<UInt64> {
        var out = Set(pinnedCopies.keys)
        for t in [mem] + imm where t !== flushing { out.formUnion(t.blobFilesWithCopies) }
        return out
    }

    /// Deletes files no version needs: old WALs and manifests, temp files, orphan tables.
    /// Called at open, with no other thread running.
    private func removeObsoleteFiles() {
        var live = Set<UInt64>()
        for level in versions.current.levels { for f in level { live.insert(f.number) } }
        let liveBlobs = Set(versions.current.blobs.keys)
        for name in (try? fileLayer.contents(of: path)) ?? [] {
            guard let (kind, n) = FileNames.parse(name) else { continue }
            let keep: Bool
            switch kind {
            case .log: keep = n >= versions.logNumber
            case .manifest: keep = n == versions.currentManifestNumber
            case .table: keep = live.contains(n)
            case .temp: keep = false
            case .blob: keep = liveBlobs.contains(n)
            }
            if !keep { try? fileLayer.remove("\(path)/\(name)") }
        }
    }

    /// Writes a memtable out as a table (nil when it is empty), and the blob bytes its
    /// references link.
    ///
    /// Versions a newer entry of the same key hides are dropped unless one of `snapshots` can
    /// see them (the rule compaction applies, see `SnapshotList`), and the blob
    /// records they referred to are counted as garbage in the same edit. Why here and not
    /// only in compaction: a value overwritten again and again in one memtable would
    /// otherwise be written into L0 and stay uncounted until a compaction happened to merge
    /// that table (RocksDB's flush drops such versions too).
    private func writeLevel0Table(_ table: Memtable, number: UInt64, snapshots: SnapshotList) throws -> (
        VersionEdit.NewFile?, [UInt64: BlobDelta]
    ) {
        let it = Memtable.Iterator(table)
        it.seekToFirst()
        guard it.isValid else { return (nil, [:]) }
        let tablePath = FileNames.table(path, number)
        let builder = try TableBuilder(
            path: tablePath, options: options, compression: options.compression(forLevel: 0, bottommost: false))
        var deltas: [UInt64: BlobDelta] = [:]
        var currentUserKey: [UInt8] = []
        /// Sequence of the newer version of `currentUserKey` just seen; nil at its newest.
        var newerSequence: SequenceNumber?
        do {
            while it.isValid {
                let key = it.keyBytes
                guard let parsed = ParsedInternalKey(key) else {
                    throw SliceError(.corruption, "malformed key in memtable")
                }
                if currentUserKey.isEmpty || !currentUserKey.withUnsafeBytes({ compareBytes($0, parsed.userKey) == 0 })
                {
                    currentUserKey.removeAll(keepingCapacity: true)
                    currentUserKey.append(contentsOf: parsed.userKey)
                    newerSequence = nil
                }
                // A newer version of this key hides this one from every reader.
                let hidden = newerSequence.map { !snapshots.anySees(parsed.sequence, hiddenAt: $0) } ?? false
                newerSequence = parsed.sequence
                if parsed.kind == .blobReference {
                    guard let ref = BlobReference(decoding: it.valueBytes) else {
                        throw SliceError(.corruption, "bad blob reference in memtable")
                    }
                    if ref.isCopy {
                        deltas[ref.fileNumber, default: .init()].copied += ref.diskBytes
                    } else {
                        deltas[ref.fileNumber, default: .init()].linked += ref.diskBytes
                    }
                    // Linked and dropped at once: what a compaction dropping it would count.
                    if hidden { deltas[ref.fileNumber, default: .init()].garbage += ref.diskBytes }
                }
                if !hidden { try builder.add(key, it.valueBytes) }
                it.next()
            }
            let size = try builder.finish()
            counters.flushBytesWritten.add(Int(size), ordering: .relaxed)
            return (
                .init(level: 0, number: number, size: size, smallest: builder.smallest, largest: builder.largest),
                deltas
            )
        } catch {
            builder.abandon()
            throw error
        }
    }

    // MARK: Threads

    private func startThreads() {
        lock.withLock { liveThreads = 1 + options.compaction.maxConcurrentCompactions }
        spawn(name: "slice-flush") { $0.flushLoop() }
        for i in 0..<options.compaction.maxConcurrentCompactions {
            spawn(name: "slice-compact-\(i)") { engine in
                _ = slice_set_thread_nice(Int32(engine.options.compaction.threadNice))
                engine.compactionLoop()
            }
        }
    }

    private func spawn(name: String, _ body: @escaping @Sendable (Engine) -> Void) {
        let thread = Thread { [self] in
            body(self)
            lock.withLock {
                liveThreads -= 1
                lock.broadcast()
            }
        }
        thread.name = name
        thread.start()
    }

    /// Records a background failure: writes fail from now on with this error.
    /// REQUIRES: lock held.
    func setBackgroundError(_ error: Error) {
        if backgroundError == nil {
            backgroundError = (error as? SliceError) ?? SliceError(.ioError, "\(error)")
        }
        lock.broadcastAll()
    }

    var backgroundErrorLocked: SliceError? { backgroundError }
    var isShuttingDownLocked: Bool { shuttingDown }

    private func flushLoop() {
        lock.lock()
        defer { lock.unlock() }
        var idle = IdleWatch()
        var emptySince = monotonicNanos()
        while true {
            // At close, a flush that keeps failing for space is given up: the frozen memtable's
            // WAL (synced when it was frozen) is replayed at the next open.
            if imm.isEmpty || backgroundError != nil || (shuttingDown && flushRetryError != nil) {
                if shuttingDown { return }
                if imm.isEmpty && backgroundError == nil
                    && (flushIdleMemtable(&idle) || flushAgedMemtable(emptySince: &emptySince))
                {
                    continue
                }
                lock.waitForWork(seconds: 1)
                continue
            }
            let table = imm[0]
            let number = versions.newFileNumber()
            pendingOutputs.insert(number)
            let nextLog = imm.count > 1 ? imm[1].logNumber : mem.logNumber
            // Readers that may see older versions than the newest (a snapshot taken later sees
            // every write in `table`).
            let snapshots = snapshotListLocked
            lock.unlock()
            var countedGarbage = false
            var flushed = false
            do {
                let (file, deltas) = try writeLevel0Table(table, number: number, snapshots: snapshots)
                countedGarbage = deltas.values.contains { $0.garbage > 0 }
                // The table refers to blob bytes: they must be durable before its WAL goes.
                try blobStore.sync(files: deltas.keys)
                manifestLock.lock()
                defer { manifestLock.unlock() }
                var edit = VersionEdit()
                edit.logNumber = nextLog
                edit.blobDeltas = deltas
                if let file { edit.newFiles.append(file) }
                let base: Version = lock.withLock {
                    edit.lastSequence = lastSequence
                    edit.nextFileNumber = versions.nextFileNumber
                    addBlobDeletions(
                        &edit, base: versions.current, pending: blobFilesWithPendingCopies(except: table))
                    return versions.current
                }
                defer { lock.withLock { endBlobDeletions(edit) } }
                let next = try logEdit(edit, base: base)
                lock.withLock {
                    versions.install(next, edit: edit)
                    flushed = true
                    flushRetryError = nil
                    flushAttempts += 1
                    pendingOutputs.remove(number)
                    counters.flushes.add(1, ordering: .relaxed)
                    lock.broadcastAll()
                }
                try? fileLayer.remove(FileNames.log(path, table.logNumber))
                restoreReserve()
            } catch {
                countedGarbage = false
                let manifestFailure = versions.manifestFailure
                // A table a failed MANIFEST write may have named stays (recovery decides).
                if manifestFailure == nil { try? fileLayer.remove(FileNames.table(path, number)) }
                let outOfSpace: Bool = lock.withLock {
                    pendingOutputs.remove(number)
                    if let e = error as? SliceError, e.code == .noSpace, manifestFailure == nil {
                        // Out of space: the memtable stays queued (its WAL is intact) and the flush
                        // is retried, so writes resume once space is freed.
                        flushRetryError = e
                        flushAttempts += 1
                        lock.broadcastAll()
                        return true
                    }
                    setBackgroundError(manifestFailure ?? error)
                    return false
                }
                // At once if giving up the space reserve freed some (flushes are what give
                // space back); otherwise in a second.
                if outOfSpace && !releaseReserve() { lock.withLock { lock.waitForWork(seconds: 1) } }
            }
            // (Not under the manifest lock, which sealing takes.) Idle files asked to be sealed
            // at the switch are sealed here too.
            if countedGarbage || blobStore.hasSealRequests { sealBlobFilesWorthSealing() }
            if countedGarbage { collectDueBlobFiles() }
            lock.lock()
            // Only now does the memtable leave the queue (its contents are in the tables since
            // the install): while its files are being collected, the next memtable cannot be
            // frozen, so writers wait rather than start a third generation of blob files.
            if flushed {
                imm.removeFirst()
                lock.broadcastAll()
            }
        }
    }

    /// When the write stream last changed, as the flush thread saw it.
    private struct IdleWatch {
        var sequence: SequenceNumber = 0
        var since = monotonicNanos()
    }

    /// Freezes the active memtable when no write has come for `Options.idleFlushSeconds` and
    /// flushing it lets space come back: it refers to blob values (whose overwritten versions
    /// in the tables compaction then counts as garbage) or deletes keys of a store that has
    /// blob files. Why: without it, the last values overwritten or deleted before a quiet
    /// period (an `rm` through the mount) keep their space until enough later writes fill the
    /// memtable. Returns whether it froze one. REQUIRES: lock held, called by the flush thread
    /// with no frozen memtable waiting.
    private func flushIdleMemtable(_ idle: inout IdleWatch) -> Bool {
        let now = monotonicNanos()
        if lastSequence != idle.sequence {
            idle = IdleWatch(sequence: lastSequence, since: now)
            return false
        }
        guard Double(now - idle.since) >= options.idleFlushSeconds * 1e9, !shuttingDown, writers.isEmpty,
            !mem.isEmpty, versions.current.levels[0].count < options.l0SlowdownTrigger,
            mem.blobBytes > 0 || mem.shadowedBlobBytes > 0 || (mem.deletions > 0 && !versions.current.blobs.isEmpty)
        else { return false }
        guard freezeForFlush() else { return false }
        if mem.isEmpty { counters.idleFlushes.add(1, ordering: .relaxed) }  // else: retry for space
        return true
    }

    /// Freezes the active memtable for the flush thread's own reasons (idle, aged); returns
    /// whether the caller should go round again. REQUIRES: lock held and `writers` empty (no
    /// leader is writing, so the switch is safe).
    private func freezeForFlush() -> Bool {
        do {
            try switchMemtable()
            return true
        } catch {
            // Out of space for a new WAL leaves the old one in use: try again later (at once if
            // the space reserve gave some: this flush is what hands space back). Anything else
            // (a failed sync) stops the store, as it does for a write.
            if (error as? SliceError)?.code != .noSpace {
                setBackgroundError(error)
                return false
            }
            return releaseReserve()
        }
    }

    /// Freezes the active memtable once its oldest write is `Options.periodicFlushSeconds`
    /// old (to within the flush thread's one-second wake-ups: the age counts from when the
    /// memtable was last seen empty). Returns whether it froze one. REQUIRES: lock held,
    /// called by the flush thread with no frozen memtable waiting.
    private func flushAgedMemtable(emptySince: inout UInt64) -> Bool {
        let now = monotonicNanos()
        if mem.isEmpty {
            emptySince = now
            return false
        }
        guard let period = options.periodicFlushSeconds, Double(now - emptySince) >= period * 1e9, !shuttingDown,
            writers.isEmpty
        else { return false }
        guard freezeForFlush() else { return false }
        if mem.isEmpty {  // else: retry for space
            emptySince = now
            counters.periodicFlushes.add(1, ordering: .relaxed)
        }
        return true
    }

    // MARK: Writes

    func put(_ key: [UInt8], _ value: [UInt8], keyspace: Keyspace = .user) throws {
        var batch = WriteBatch()
        batch.put(key, value, keyspace: keyspace)
        try write(batch)
    }

    func delete(_ key: [UInt8], keyspace: Keyspace = .user) throws {
        var batch = WriteBatch()
        batch.delete(key, keyspace: keyspace)
        batch.freesSpace = true
        try write(batch)
    }

    /// Applies `batch` atomically. With `sync` (default: the store's policy is `.always`) the
    /// WAL is synced before this returns.
    ///
    /// `streamed` is the blob writer (and the offset its uncommitted records start at) of a
    /// `ValueWriter` committing its value in this batch: references to it are allowed, and the
    /// writer is returned to the pool (or its records cut off on failure).
    func write(_ batch: WriteBatch, sync: Bool? = nil, streamed: (BlobFileWriter, UInt64)? = nil) throws {
        let start = EngineCounters.sampleStart(ticket: counters.writeTicket.wrappingAdd(1, ordering: .relaxed).oldValue)
        var puts = 0
        var deletes = 0
        var bytes = 0
        var large = 0
        var pinned: [UInt64] = []
        /// Copies whose blob file is gone or going (a compaction relocated the value since it
        /// was read): the batch holds the file, so its bytes are still there to copy.
        var staleCopies = false
        // A streamed writer not handed to `commitReferences` (the batch was refused, or empty)
        // is given back with its records cut off, never leaked.
        var handedOver = false
        defer {
            if let (w, offset) = streamed, !handedOver { abandonBlobWriter(w, rollbackTo: offset) }
        }
        defer {
            if !pinned.isEmpty {
                lock.withLock {
                    for n in pinned {
                        if let c = pinnedCopies[n] { pinnedCopies[n] = c > 1 ? c - 1 : nil }
                    }
                }
            }
        }
        try batch.forEach { kind, key, value in
            // Engine keys carry a keyspace byte in front of the user's key.
            guard key.count > 1 else { throw SliceError(.invalidArgument, "empty key") }
            guard key.count - 1 <= Options.maxKeySize else {
                throw SliceError(
                    .invalidArgument, "key of \(key.count - 1) bytes exceeds the limit of \(Options.maxKeySize)")
            }
            guard value.count <= options.maxValueSize else {
                throw SliceError(
                    .invalidArgument, "value of \(value.count) bytes exceeds the limit of \(options.maxValueSize)")
            }
            if kind == .blobReference {
                guard let ref = BlobReference(decoding: value) else {
                    throw SliceError(.invalidArgument, "malformed blob reference")
                }
                let ownRecord = !ref.isCopy && streamed?.0.number == ref.fileNumber
                // A copy pins its file until the commit has put it in a memtable, so the file
                // cannot be deleted in between.
                let liveFile =
                    ref.isCopy
                    && (lock.withLock {
                        guard versions.current.blobs[ref.fileNumber] != nil,
                            !blobDeletesInFlight.contains(ref.fileNumber)
                        else { return false }
                        pinnedCopies[ref.fileNumber, default: 0] += 1
                        pinned.append(ref.fileNumber)
                        return true
                    } || blobStore.unsealedNumbers.contains(ref.fileNumber))
                if ref.isCopy && !liveFile {
                    staleCopies = true
                } else if !ownRecord && !liveFile {
                    throw SliceError(.invalidArgument, "a blob reference names a record this write did not make")
                }
            }
            if kind == .indirect {
                guard let ref = IndirectReference(decoding: value), ref.prefix.count <= IndirectReference.maxPrefixSize
                else {
                    throw SliceError(
                        .invalidArgument,
                        "malformed indirect reference (its prefix must be 1 to \(IndirectReference.maxPrefixSize) bytes)"
                    )
                }
                // Its header would be the entry itself.
                guard ref.keyspace.rawValue != key[0] || !ref.prefix.elementsEqual(key[1...]) else {
                    throw SliceError(.invalidArgument, "an indirect entry cannot refer to its own key")
                }
            }
            if kind == .value && value.count >= options.blobThreshold { large += 1 }
            if kind == .deletion { deletes += 1 } else { puts += 1 }
            bytes += key.count - 1 + value.count
        }
        guard !batch.isEmpty else { return }
        if staleCopies {
            let copied = try copyingStaleReferences(batch)
            handedOver = true
            return try write(copied, sync: sync, streamed: streamed)
        }
        if !batch.freesSpace && bytes > SpaceReserve.smallWrite { try checkReserve(bytes: bytes) }
        let sync = sync ?? (options.syncPolicy == .always)
        func apply() throws {
            if let (w, offset) = streamed {
                handedOver = true
                try commitReferences(batch, sync: sync, writer: w, rollbackTo: offset)
            } else if large > 0 {
                try writeSeparatingLargeValues(batch, sync: sync)
            } else {
                try commit(Writer(batch: batch, sync: sync))
            }
        }
        do {
            try apply()
        } catch let e as SliceError where e.code == .noSpace && batch.freesSpace && streamed == nil {
            // A deletion on a full disk: the reserve is what lets it (and the flush that frees
            // the space) through. A failed write leaves nothing behind, so it is tried again.
            guard releaseReserve() else { throw e }
            try apply()
        }
        countWrite(puts: puts, deletes: deletes, bytes: bytes, since: start)
    }

    /// Counts an acknowledged write batch (and its latency, when it was sampled).
    private func countWrite(puts: Int, deletes: Int, bytes: Int, since start: UInt64) {
        counters.puts.add(puts, ordering: .relaxed)
        counters.deletes.add(deletes, ordering: .relaxed)
        counters.writeBatches.add(1, ordering: .relaxed)
        counters.userBytesWritten.add(bytes, ordering: .relaxed)
        counters.record(counters.putLatency, since: start)
    }

    /// Applies a small batch of plain puts and deletes, without sync (the caller decided it needs
    /// none), on the calling thread if that needs no waiting: no other writer queued, room in
    /// the memtable, no slowdown or stall due. Returns false, having done nothing, otherwise (also for anything unusual:
    /// large values, references, keys out of bounds), and the caller hands the write to a
    /// thread that may wait. With `mmapWrites` the WAL append is a copy into a mapping, so such
    /// a write is memory work: what lets the async API run it where it is called instead of
    /// paying a thread hop (10 to 40 µs here) for every put.
    func writeIfUncontended(_ batch: WriteBatch) throws -> Bool {
        guard options.mmapWrites, !options.readOnly, !batch.isEmpty else {
            return false
        }
        var puts = 0
        var deletes = 0
        var bytes = 0
        var plain = true
        let threshold = options.blobThreshold
        try batch.forEach { kind, key, value in
            guard kind == .value || kind == .deletion, value.count < threshold, key.count > 1,
                key.count - 1 <= Options.maxKeySize
            else {
                plain = false
                return
            }
            if kind == .deletion { deletes += 1 } else { puts += 1 }
            bytes += key.count - 1 + value.count
        }
        guard plain, batch.freesSpace || bytes <= SpaceReserve.smallWrite else { return false }
        let start = EngineCounters.sampleStart(ticket: counters.writeTicket.wrappingAdd(1, ordering: .relaxed).oldValue)
        let w = Writer(batch: batch, sync: false)
        var committed = try commit(w, onlyIfUncontended: true)
        if !committed && queuedWriters.load(ordering: .relaxed) > 0 {
            // Another writer holds the queue for a few microseconds: wait that long (less than
            // the hop costs), then try once more.
            var spins = 0
            while queuedWriters.load(ordering: .relaxed) > 0 && spins < Engine.uncontendedSpins {
                slice_cpu_relax()
                spins += 1
            }
            committed = try commit(w, onlyIfUncontended: true)
        }
        guard committed else { return false }
        counters.inlineWrites.add(1, ordering: .relaxed)
        countWrite(puts: puts, deletes: deletes, bytes: bytes, since: start)
        return true
    }

    /// `batch` with every copied reference whose blob file has left the version (or is
    /// leaving it) replaced by the value's bytes, read from the file the batch still holds:
    /// a value moved by a compaction between `storedValue` and this write is copied instead
    /// of refused. A reference whose bytes cannot be read any more is refused.
    private func copyingStaleReferences(_ batch: WriteBatch) throws -> WriteBatch {
        var out = WriteBatch()
        try withExtendedLifetime(batch) {
            try batch.forEach { kind, key, value in
                guard kind == .blobReference, let ref = BlobReference(decoding: value), ref.isCopy,
                    lock.withLock({
                        versions.current.blobs[ref.fileNumber] == nil || blobDeletesInFlight.contains(ref.fileNumber)
                    })
                else {
                    out.append(kind, key, value)
                    return
                }
                let bytes: [UInt8]
                do {
                    bytes = try blobStore.readAll(ref)
                } catch {
                    throw SliceError(
                        .invalidArgument,
                        "a stored value was put after its blob file \(ref.fileNumber) was deleted (\(error))")
                }
                bytes.withUnsafeBytes { out.append(.value, key, $0) }
            }
        }
        return out
    }

    /// Writes the batch's large values to a blob file, then commits the batch with references
    /// in their place.
    private func writeSeparatingLargeValues(_ batch: WriteBatch, sync: Bool) throws {
        try freezeIfGarbageFreezePending()
        let w = try acquireBlobWriter()
        let start = w.end
        var out = WriteBatch()
        do {
            try batch.forEach { kind, key, value in
                if kind == .value && value.count >= options.blobThreshold {
                    w.begin()
                    try w.append(value)
                    let ref = w.endRecord()
                    counters.blobBytesWritten.add(Int(ref.diskBytes), ordering: .relaxed)
                    counters.blobValuesWritten.add(1, ordering: .relaxed)
                    out.putBlobReference(key, ref)
                } else {
                    out.append(kind, key, value)
                }
            }
            try w.writeOut()
            if sync { try w.sync() }
        } catch {
            abandonBlobWriter(w, rollbackTo: start)
            throw error
        }
        try commitReferences(out, sync: sync, writer: w, rollbackTo: start)
    }

    /// Before a new value goes to a blob file: a freeze that `freezeIfHidingGarbage` could not
    /// make is made now (waiting for room if need be), so the value goes to the next
    /// memtable's file, not the one sealed for the memtable that hides the old values.
    func freezeIfGarbageFreezePending() throws {
        if garbageFreezePending.load(ordering: .relaxed) {
            try commit(Writer(batch: WriteBatch(), sync: false, freeze: true))
        }
    }

    func acquireBlobWriter(forRelocation: Bool = false) throws -> BlobFileWriter {
        try ensureWritable()
        var toSeal: [BlobFileWriter] = []
        defer {
            for w in toSeal {
                counters.blobFilesSealedEarly.add(1, ordering: .relaxed)
                do { try sealBlobFile(w) } catch { lock.withLock { setBackgroundError(error) } }
            }
        }
        return try blobStore.acquireWriter(
            forRelocation: forRelocation, toSeal: &toSeal, newFileNumber: versions.newFileNumber)
    }

    /// Commits a batch whose references point at records `w` just wrote (from `start` on), and
    /// returns `w` to the pool. If the commit fails cleanly the records are cut off again;
    /// if the store's state is unknown (a failed WAL sync) the file is left for recovery.
    func commitReferences(_ batch: WriteBatch, sync: Bool, writer w: BlobFileWriter, rollbackTo start: UInt64) throws {
        do {
            try commit(Writer(batch: batch, sync: sync))
        } catch {
            abandonBlobWriter(w, rollbackTo: start)
            throw error
        }
        releaseBlobWriter(w)
    }

    /// Undoes uncommitted records and returns the writer, or forgets it when that is not safe.
    func abandonBlobWriter(_ w: BlobFileWriter, rollbackTo start: UInt64) {
        let clean = lock.withLock { backgroundError == nil }
        if clean, (try? w.rollback(to: start)) != nil {
            releaseBlobWriter(w)
        } else {
            blobStore.discardWriter(w)
        }
    }

    /// Returns a writer to the pool, sealing its file in the manifest when it is full or worth
    /// sealing early for its garbage (`BlobStore.releaseWriter`).
    func releaseBlobWriter(_ w: BlobFileWriter) {
        let outcome = blobStore.releaseWriter(w)
        guard outcome != .pooled else { return }
        if outcome == .sealEarly { counters.blobFilesSealedEarly.add(1, ordering: .relaxed) }
        do {
            try sealBlobFile(w)
        } catch {
            lock.withLock { setBackgroundError(error) }
        }
    }

    /// Seals the idle blob files whose counted garbage makes sealing worthwhile now, after an
    /// edit counted garbage (`BlobFileAccount.worthSealingEarly`); files lent to a put are
    /// sealed when it returns them. Why: garbage in a file still open for appends can be
    /// neither collected nor deleted. Not called with `lock` held.
    func sealBlobFilesWorthSealing() {
        let accounts = lock.withLock { versions.current.blobs }
        for w in blobStore.noteAccounts(accounts) {
            counters.blobFilesSealedEarly.add(1, ordering: .relaxed)
            do {
                try sealBlobFile(w)
            } catch {
                lock.withLock { setBackgroundError(error) }
                return
            }
        }
    }

    /// Seals every blob file no put is appending to right now, so that a manual compaction can
    /// collect or delete it. Why: garbage in a file still being appended to stays until the
    /// file is full (`blobFileSize`); with small values in blob files (a mount keeps every file
    /// of 4 KiB or more there) that is many deleted files' worth of space.
    func sealIdleBlobFiles() throws {
        for w in blobStore.takeIdleWriters() { try sealBlobFile(w) }
    }

    /// Appends a version edit to the MANIFEST. A failure stops the store at once (the edit may
    /// or may not be on the disk; see `VersionSet.manifestFailure`): writes fail with it until
    /// the store is reopened, whichever thread's edit it was.
    /// REQUIRES: manifest lock held, `lock` not held.
    func logEdit(_ edit: VersionEdit, base: Version) throws -> Version {
        do {
            return try versions.log(edit, base: base)
        } catch {
            lock.withLock { setBackgroundError(error) }
            throw error
        }
    }

    /// Syncs a full blob file and records its final size. Not called with `lock` held.
    func sealBlobFile(_ w: BlobFileWriter) throws {
        try w.sync()
        manifestLock.lock()
        defer { manifestLock.unlock() }
        var edit = VersionEdit()
        edit.blobSeals = [(w.number, w.recordBytes)]
        let base: Version = lock.withLock {
            edit.nextFileNumber = versions.nextFileNumber
            addBlobDeletions(&edit, base: versions.current, pending: blobFilesWithPendingCopies())
            return versions.current
        }
        defer { lock.withLock { endBlobDeletions(edit) } }
        let next = try logEdit(edit, base: base)
        lock.withLock {
            versions.install(next, edit: edit)
            // A sealed file may be due for garbage collection now.
            lock.signalBackground()
        }
    }

    /// Group commit: queue `w`; the writer at the head of the queue becomes the leader, writes
    /// the batches of everyone queued behind it as one WAL record, applies them to the memtable
    /// and wakes them.
    /// `onlyIfUncontended`: returns false without queueing when `w` would have to wait for
    /// another writer or for room (`writeIfUncontended`).
    @discardableResult
    private func commit(_ w: Writer, onlyIfUncontended: Bool = false) throws -> Bool {
        try ensureWritable()
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw SliceError(.closed, "the store is closed") }
        if onlyIfUncontended {
            // What makes `makeRoomForWrite` return at once.
            guard writers.isEmpty, backgroundError == nil, !shuttingDown,
                versions.current.levels[0].count < options.l0SlowdownTrigger,
                mem.approximateMemoryUsage < options.memtableSize,
                mem.shadowedBlobBytes < options.memtableGarbageTrigger
            else { return false }
        }
        writers.append(w)
        queuedWriters.store(writers.count, ordering: .relaxed)
        awaitTurn(w)
        if w.done {
            if let e = w.error { throw e }
            return true
        }
        // The group is writers[0..<groupCount]; followers stay queued until marked done.
        var groupCount = 1
        var failure: SliceError?
        do {
            try makeRoomForWrite(force: w.freeze)
        } catch {
            failure = (error as? SliceError) ?? SliceError(.ioError, "\(error)")
        }
        if failure == nil && !w.freeze {
            var size = w.batch.byteSize
            var count = w.batch.count
            let maxSize = size <= 128 << 10 ? size + (128 << 10) : 1 << 20
            for other in writers.dropFirst() {
                if other.freeze || (other.sync && !w.sync) || size + other.batch.byteSize > maxSize { break }
                size += other.batch.byteSize
                count += other.batch.count
                groupCount += 1
            }
            let first = lastSequence + 1
            var rep: [UInt8] = []
            let batch: WriteBatch
            if groupCount == 1 {
                // Alone: the writer's own batch is the record (no copy).
                w.batch.sequence = first
                batch = w.batch
            } else {
                rep = groupBuffer
                groupBuffer = []
                rep.removeAll(keepingCapacity: true)
                rep.appendFixed64(first)
                rep.appendFixed32(UInt32(count))
                for member in writers.prefix(groupCount) { rep.append(contentsOf: member.batch.body) }
                batch = WriteBatch(rep: rep)
            }
            let wal = self.wal
            let mem = self.mem
            lock.unlock()
            if count <= 16 { try? batch.forEach { _, key, _ in mem.prefetchFilter(for: key) } }
            let before = wal.size
            do {
                do {
                    try wal.add(batch.rep)
                } catch {
                    // Leave no partial record behind; if even that fails, stop accepting writes.
                    do { try wal.rollback(to: before) } catch { lock.withLock { setBackgroundError(error) } }
                    throw error
                }
                counters.walBytesWritten.add(Int(wal.size - before), ordering: .relaxed)
                counters.groupCommits.add(1, ordering: .relaxed)
                if w.sync {
                    do {
                        try wal.sync()
                    } catch {
                        // After a failed fsync the state of the page cache is unknown: stop.
                        lock.withLock { setBackgroundError(error) }
                        throw error
                    }
                    counters.walSyncs.add(1, ordering: .relaxed)
                }
                var seq = first
                try batch.forEach { kind, key, value in
                    if kind == .blobReference, let ref = BlobReference(decoding: value) {
                        mem.hold(blobStore.file(ref.fileNumber), copy: ref.isCopy)
                    }
                    mem.add(seq, kind, key: key, value: value)
                    seq += 1
                }
            } catch {
                failure = (error as? SliceError) ?? SliceError(.ioError, "\(error)")
            }
            lock.lock()
            if failure == nil { lastSequence = first + UInt64(count) - 1 }
            if groupCount > 1 && rep.capacity <= 1 << 20 { groupBuffer = rep }
            if failure == nil { freezeIfHidingGarbage() }
        }
        for member in writers.prefix(groupCount) {
            member.error = failure
            member.done = true
            member.turn.store(true, ordering: .releasing)
        }
        writers.removeFirst(groupCount)
        queuedWriters.store(writers.count, ordering: .relaxed)
        writers.first?.turn.store(true, ordering: .releasing)
        // Wake followers that were served, and the next leader if one is queued.
        if groupCount > 1 || !writers.isEmpty { lock.broadcast() }
        if let failure { throw failure }
        return true
    }

    /// Polls (for about `writerSpins` pauses, a few microseconds) before sleeping on the
    /// condition. Why: a small write holds the head of the queue for 2 to 5 µs, while a futex
    /// sleep and wake-up cost more than that on each side; with two writer threads, sleeping
    /// made each write pay for both and halved the throughput of one thread. RocksDB's
    /// `WriteThread::AwaitState` spins the same way before it blocks. Only the writer right
    /// behind the head polls, and only when neither syncs: a sync takes a hundred microseconds
    /// or more, and with more pollers than cores the leader itself waited for a core (8 threads
    /// writing with fsync: 4.8 writes per sync, yet each sync took 425 µs instead of 160).
    /// REQUIRES: lock held, `w` queued; returns with the lock held, `w` done or at the head.
    private func awaitTurn(_ w: Writer) {
        if writers.first === w { return }
        guard !w.sync, !writers[0].sync, writers.count == 2 else {
            while !w.done && writers.first !== w { lock.wait() }
            return
        }
        lock.unlock()
        var spins = 0
        while !w.turn.load(ordering: .acquiring) && spins < Engine.writerSpins {
            slice_cpu_relax()
            spins += 1
        }
        lock.lock()
        while !w.done && writers.first !== w { lock.wait() }
    }

    /// Pauses a queued writer polls for before it sleeps (a `pause` is about 10-40 ns).
    static let writerSpins = 2000
    /// Pauses `writeIfUncontended` waits for the queue to empty before it gives up (it runs on
    /// the cooperative pool, so a tenth of a queued writer's).
    static let uncontendedSpins = 200

    /// Makes sure the active memtable has room, switching to a new one (and WAL) when it is
    /// full or `force` is set, and stalling while the immutable queue or L0 is full.
    /// REQUIRES: lock held, caller is the write leader.
    private func makeRoomForWrite(force: Bool) throws {
        var force = force
        var allowDelay = !force
        var retriedFlush = false
        while true {
            if let e = backgroundError { throw e }
            if shuttingDown { throw SliceError(.closed, "the store is closing") }
            let level0 = versions.current.levels[0].count
            if allowDelay && level0 >= options.l0SlowdownTrigger {
                counters.slowdowns.add(1, ordering: .relaxed)
                lock.unlock()
                usleep(1000)
                lock.lock()
                allowDelay = false
                continue
            }
            let full = mem.approximateMemoryUsage >= options.memtableSize
            // Early, for space: the memtable hides enough overwritten blob values that the flush
            // (which drops them) should count them as garbage now (see `memtableGarbageTrigger`).
            let garbage = mem.shadowedBlobBytes >= options.memtableGarbageTrigger
            if force ? mem.isEmpty : !full && !garbage { return }
            if imm.count >= options.maxImmutableMemtables || level0 >= options.l0StopTrigger {
                // The flush this write waits for fails for space: retry it once now, and fail
                // the write with its error if that fails too (rather than wait for space).
                if imm.count >= options.maxImmutableMemtables, let e = flushRetryError {
                    if retriedFlush { throw e }
                    retriedFlush = true
                    let start = flushAttempts
                    lock.signalBackground()
                    while flushAttempts == start && backgroundError == nil && !shuttingDown { lock.wait() }
                    continue
                }
                counters.stalls.add(1, ordering: .relaxed)
                let t0 = monotonicNanos()
                lock.wait()
                counters.stallNanos.add(Int(monotonicNanos() - t0), ordering: .relaxed)
                continue
            }
            try switchMemtable()
            if !force && !full { counters.blobGarbageFlushes.add(1, ordering: .relaxed) }
            force = false
        }
    }

    /// Freezes the memtable right after the write that made it hide `memtableGarbageTrigger`
    /// blob bytes, rather than at the start of the next write. Why: by then the next put has
    /// written its value into the blob file already, so its reference would land in the next
    /// memtable and keep that file (sealed at the switch, see `BlobStore.requestSeal`) alive
    /// until the next memtable is flushed too: a third generation of files on the disk.
    /// Skipped when the switch would have to wait (the next write's `makeRoomForWrite` does
    /// it then). REQUIRES: lock held, the caller is the write leader and its group is applied.
    private func freezeIfHidingGarbage() {
        guard mem.shadowedBlobBytes >= options.memtableGarbageTrigger, backgroundError == nil, !shuttingDown else {
            return
        }
        guard imm.count < options.maxImmutableMemtables, versions.current.levels[0].count < options.l0SlowdownTrigger
        else {
            // The next large put freezes it before writing its value (`writeSeparatingLargeValues`).
            garbageFreezePending.store(true, ordering: .relaxed)
            return
        }
        do {
            try switchMemtable()
            counters.blobGarbageFlushes.add(1, ordering: .relaxed)
        } catch {
            // The write is done; out of space for a new WAL is retried by the next write, which
            // reports it. A failed sync stops the store, as it would in that write.
            if (error as? SliceError)?.code != .noSpace { setBackgroundError(error) }
        }
    }

    /// Freezes the active memtable (queued for the flush thread) and starts a new one with
    /// its own WAL. REQUIRES: lock held, no write in progress (the caller is the write leader,
    /// or `writers` is empty).
    private func switchMemtable() throws {
        // The frozen memtable's WAL is synced once here, so `sync()` covers all older WALs;
        // blob values it refers to first (found by the power-cut tests).
        try blobStore.syncAll()
        try wal.sync()
        try wal.finish()
        let previous = (number: mem.logNumber, length: wal.size)
        let number = versions.newFileNumber()
        wal = try newWAL(number, previous: previous)
        garbageFreezePending.store(false, ordering: .relaxed)
        // Files the frozen memtable hides much of (half its trigger, or what makes a file worth
        // sealing anyway) are sealed now, so each holds little more than one memtable's values.
        let minimum = min(Int(clamping: blobStore.earlySealMinimumBytes), options.memtableGarbageTrigger / 2)
        let hiding = mem.shadowedBlobBytesByFile.filter { $0.value >= minimum }.keys
        if !hiding.isEmpty { blobStore.requestSeal(hiding) }
        imm.append(mem)
        mem = Memtable(logNumber: number, expectedBytes: options.memtableSize)
        lock.signalBackground()
    }

    /// Creates WAL file `number` (read-write: a mapping needs both).
    private func newWAL(_ number: UInt64, previous: (number: UInt64, length: Int64)? = nil) throws -> LogWriter {
        let file = try fileLayer.open(
            FileNames.log(path, number), flags: O_RDWR | O_CREAT | O_TRUNC, mode: File.defaultMode)
        return LogWriter(file: file, mapped: options.mmapWrites, newIn: path, marksSyncs: true, previousLog: previous)
    }

    /// Makes every acknowledged write durable (the WAL is synced through the write queue, so
    /// it never races a leader's append).
    func sync() throws {
        try ensureWritable()
        try blobStore.syncAll()
        var batch = WriteBatch()
        batch.sequence = 0
        let w = Writer(batch: batch, sync: true, freeze: false)
        try syncThroughQueue(w)
    }

    private func syncThroughQueue(_ w: Writer) throws {
        lock.lock()
        defer { lock.unlock() }
        guard !closed else { throw SliceError(.closed, "the store is closed") }
        // After a failed write or sync a successful sync would promise what may be lost.
        if let e = backgroundError { throw e }
        writers.append(w)
        queuedWriters.store(writers.count, ordering: .relaxed)
        awaitTurn(w)
        let wal = self.wal
        lock.unlock()
        var failure: Error?
        do { try wal.sync() } catch { failure = error }
        lock.lock()
        if let failure { setBackgroundError(failure) }
        writers.removeFirst()
        queuedWriters.store(writers.count, ordering: .relaxed)
        writers.first?.turn.store(true, ordering: .releasing)
        lock.broadcast()
        if let failure { throw failure }
        counters.walSyncs.add(1, ordering: .relaxed)
    }

    /// Freezes the active memtable and waits until every frozen memtable is on disk.
    func flush() throws {
        let w = Writer(batch: WriteBatch(), sync: false, freeze: true)
        try commit(w)
        try lock.withLock {
            let start = flushAttempts
            lock.signalBackground()
            while !imm.isEmpty {
                if let e = backgroundError { throw e }
                // Out of space: fail with the outcome of an attempt made after this call.
                if flushAttempts > start, let e = flushRetryError { throw e }
                lock.wait()
            }
        }
    }

    // MARK: Reads

    /// Grabs what a read needs under the lock: memtables, version and sequence.
    private func readState(_ snapshot: Snapshot?) throws -> (Memtable, [Memtable], Version, SequenceNumber) {
        try lock.withLock {
            guard !closed else { throw SliceError(.closed, "the store is closed") }
            return (mem, imm, versions.current, snapshot?.sequence ?? lastSequence)
        }
    }

    /// What a read sees now (or as of `snapshot`).
    private func readView(_ snapshot: Snapshot?) throws -> ReadView {
        let (mem, imm, version, seq) = try readState(snapshot)
        return ReadView(mem: mem, imm: imm, version: version, sequence: seq, tableCache: tableCache)
    }

    /// Resolves indirect entries found through `view`.
    private func chunkReader(_ view: ReadView) -> ChunkedValueReader {
        ChunkedValueReader(view: view, blobs: blobStore, options: options)
    }

    /// The newest version of `key` visible at the snapshot (or now), and the view it was found
    /// in, which must stay alive while its value is read (its memtables and version hold the
    /// files the value, and the chunks of an indirect one, may live in).
    private func lookup(_ key: [UInt8], _ keyspace: Keyspace, _ snapshot: Snapshot?) throws -> (
        Memtable.Lookup, view: ReadView
    ) {
        guard !key.isEmpty, key.count <= Options.maxKeySize else {
            throw SliceError(.invalidArgument, key.isEmpty ? "empty key" : "key exceeds \(Options.maxKeySize) bytes")
        }
        let view = try readView(snapshot)
        return (try view.lookup(keyspace, key), view)
    }

    func get(_ key: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        // Counted before the lookup: the count numbers the gets that are sampled for latency.
        let start = EngineCounters.sampleStart(ticket: counters.gets.wrappingAdd(1, ordering: .relaxed).oldValue)
        let (result, view) = try lookup(key, keyspace, snapshot)
        counters.record(counters.getLatency, since: start)
        switch result {
        case .found(let v):
            counters.getHits.add(1, ordering: .relaxed)
            return v
        case .blob(let r):
            counters.getHits.add(1, ordering: .relaxed)
            return try withExtendedLifetime(view) { try blobStore.readAll(try decodeReference(r)) }
        case .indirect(let payload):
            counters.getHits.add(1, ordering: .relaxed)
            return try withExtendedLifetime(view) {
                try chunkReader(view).readAll(payload, entryKey: [keyspace.rawValue] + key)
            }
        case .deleted, .absent:
            return nil
        }
    }

    private func decodeReference(_ bytes: [UInt8]) throws -> BlobReference {
        guard let ref = BlobReference(decoding: bytes) else {
            throw SliceError(.corruption, "malformed blob reference")
        }
        return ref
    }

    /// Where a value is kept.
    enum Stored {
        case inline([UInt8])
        case blob(BlobReference)
        /// A chunked value an indirect entry names, its header read.
        case indirect(ChunkedValueReader.Value)

        var size: UInt64 {
            switch self {
            case .inline(let v): return UInt64(v.count)
            case .blob(let r): return r.length
            case .indirect(let c): return c.length
            }
        }
    }

    /// Finds `key` and calls `body` with how its value is stored (nil: absent), keeping every
    /// file the value may live in alive for the duration of the call.
    func withStoredValue<R>(
        _ key: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil, _ body: (Stored?) throws -> R
    ) throws -> R {
        let (result, view) = try lookup(key, keyspace, snapshot)
        return try withExtendedLifetime(view) {
            let stored: Stored?
            switch result {
            case .found(let v): stored = .inline(v)
            case .blob(let r): stored = .blob(try decodeReference(r))
            case .indirect(let payload):
                stored = .indirect(try chunkReader(view).resolve(payload, entryKey: [keyspace.rawValue] + key))
            case .deleted, .absent: stored = nil
            }
            return try body(stored)
        }
    }

    /// How `key`'s value is held, for putting it under another key without copying it.
    func storedValue(_ key: [UInt8], keyspace: Keyspace = .user) throws -> StoredValue? {
        try withStoredValue(key, keyspace: keyspace) { stored in
            switch stored {
            case nil: return nil
            case .inline(let v): return StoredValue(storage: .inline(v))
            case .blob(let r): return StoredValue(storage: .blob(r, blobStore.file(r.fileNumber)))
            case .indirect(let c): return StoredValue(storage: .indirect(c.reference, length: c.length))
            }
        }
    }

    /// Size of `key`'s value without reading it; nil when absent.
    func valueSize(_ key: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws -> UInt64? {
        try withStoredValue(key, keyspace: keyspace, snapshot: snapshot) { $0?.size }
    }

    /// Reads up to `buffer.count` bytes of `key`'s value at `offset` into `buffer`; returns the
    /// number of bytes read (0 at or past the end), or nil when the key is absent. Only the
    /// chunks of a blob (or of a chunked value) that the range touches are read.
    func read(
        _ key: [UInt8], keyspace: Keyspace = .user, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer,
        snapshot: Snapshot? = nil
    ) throws -> Int? {
        try withStoredValue(key, keyspace: keyspace, snapshot: snapshot) { stored -> Int? in
            guard let stored else { return nil }
            let size = stored.size
            guard offset < size else { return 0 }
            let n = Int(min(UInt64(buffer.count), size - offset))
            switch stored {
            case .inline(let v):
                v.withUnsafeBytes {
                    buffer.baseAddress!.copyMemory(from: $0.baseAddress! + Int(offset), byteCount: n)
                }
            case .blob(let ref):
                try blobStore.read(ref, from: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
            case .indirect(let c):
                try c.read(from: offset, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n]))
            }
            return n
        }
    }

    /// `get` of a `.user` key answered without disk I/O, or nil when it would need some (a
    /// block not in the block cache, a table not open, a blob or chunked value): what the async
    /// API answers where it is called, without a hop to an I/O thread.
    func getWithoutIO(_ key: [UInt8]) throws -> [UInt8]?? {
        guard !key.isEmpty, key.count <= Options.maxKeySize else { return nil }
        let view = try readView(nil)
        let result: Memtable.Lookup
        do {
            result = try view.lookup(.user, key, cacheOnly: true)
        } catch is NeedsIO {
            return nil
        }
        switch result {
        case .found(let v):
            counters.gets.add(1, ordering: .relaxed)
            counters.getHits.add(1, ordering: .relaxed)
            return .some(v)
        case .deleted, .absent:
            counters.gets.add(1, ordering: .relaxed)
            return .some(nil)
        case .blob, .indirect:
            return nil
        }
    }

    /// A cursor over `range` as of now (or as of `snapshot`).
    func scan(_ range: KeyRange, keyspace: Keyspace = .user, snapshot: Snapshot? = nil, reverse: Bool = false) throws
        -> ScanCursor
    {
        let view = try readView(snapshot)
        let (start, end) = keyspace.engineRange(range)
        return ScanCursor(
            merged: try view.makeIterator(), sequence: view.sequence, range: KeyRange(start: start, end: end),
            version: view.version, blobs: blobStore, chunks: chunkReader(view), reverse: reverse)
    }

    /// Whether any live key starts with `prefix` (directory checks: "is anything below a/b/?").
    /// Cheaper than a scan: only sources that can hold such a key are merged. Tables whose key
    /// range misses the prefix are skipped, and, when the prefix ends in '/', so are tables
    /// whose filter holds directory prefixes and rules this one out (see `TableFormat`).
    func containsKey(withPrefix prefix: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws -> Bool {
        let (mem, imm, version, seq) = try readState(snapshot)
        let (start, end) = keyspace.engineRange(.prefix(prefix))
        let prefixHash: UInt64? = prefix.last == 0x2f ? BloomFilter.hash(start) : nil
        var children: [any InternalIterator] = []
        func admit(_ m: Memtable) {
            if prefixHash.map({ m.mayContain(hash: $0) }) ?? true { children.append(Memtable.Iterator(m)) }
        }
        admit(mem)
        for m in imm.reversed() { admit(m) }
        func admit(_ f: FileMetaData) throws {
            guard compareSlices(f.largestUserKey, start[...]) >= 0, compareSlices(f.smallestUserKey, end[...]) < 0
            else { return }
            let t = try tableCache.table(f.number)
            if let prefixHash, !t.mayContainPrefix(hash: prefixHash) { return }
            children.append(t.makeIterator())
        }
        for f in version.levels[0] { try admit(f) }
        for level in 1..<version.levels.count where !version.levels[level].isEmpty {
            let files = version.levels[level]
            var i = start.withUnsafeBytes { version.findFile(level: level, $0) }
            while i < files.count, compareSlices(files[i].smallestUserKey, end[...]) < 0 {
                try admit(files[i])
                i += 1
            }
        }
        // Every source ruled out by its filter: the usual answer for a file's "any children?".
        if children.isEmpty { return false }
        let merged = MergingIterator(children)
        try merged.seek(makeInternalKey(start, maxSequenceNumber, .forSeek))
        var lastUserKey: [UInt8]?
        while merged.isValid {
            guard let p = ParsedInternalKey(merged.keyBytes) else {
                throw SliceError(.corruption, "malformed internal key")
            }
            if end.withUnsafeBytes({ compareBytes(p.userKey, $0) >= 0 }) { return false }
            let older = lastUserKey.map { l in l.withUnsafeBytes { compareBytes($0, p.userKey) == 0 } } ?? false
            if p.sequence <= seq && !older {
                // The newest visible version of this key decides.
                if p.kind != .deletion { return true }
                lastUserKey = Array(p.userKey)
            }
            try merged.next()
        }
        return false
    }

    func snapshot() throws -> Snapshot {
        try lock.withLock {
            guard !closed else { throw SliceError(.closed, "the store is closed") }
            snapshots[lastSequence, default: 0] += 1
            return Snapshot(sequence: lastSequence, engine: self)
        }
    }

    func releaseSnapshot(_ seq: SequenceNumber) {
        lock.withLock {
            if let n = snapshots[seq] { snapshots[seq] = n > 1 ? n - 1 : nil }
        }
    }

    /// Oldest sequence any reader may still ask for. REQUIRES: lock held.
    var smallestSnapshotLocked: SequenceNumber { snapshots.keys.min() ?? lastSequence }

    /// Every snapshot held now. REQUIRES: lock held.
    var snapshotListLocked: SnapshotList { SnapshotList(snapshots.keys) }

    // MARK: Maintenance

    func clearCache() { blockCache.clear() }

    /// Reads every block of every live table and every WAL, verifying all checksums. Returns a
    /// report; throws the first corruption found, naming the file.
    func check(progress: ((Int, Int) -> Void)? = nil) throws -> CheckReport {
        let (_, _, version, _) = try readState(nil)
        var report = CheckReport()
        // A record may have several references (older versions, renames): read it once.
        var verified = Set<[UInt64]>()
        func verifyOnce(_ ref: BlobReference) throws {
            guard verified.insert([ref.fileNumber, ref.offset]).inserted else { return }
            try blobStore.verify(ref)
            report.blobValues += 1
            report.blobBytes += ref.length
        }
        // Whether any indirect entry was seen: only then are their headers looked up.
        var sawIndirect = false
        let files = version.levels.flatMap { $0 }
        for (i, f) in files.enumerated() {
            progress?(i, files.count)
            let reader = try TableReader(
                path: FileNames.table(path, f.number), fileNumber: f.number, cache: nil, stats: nil, layer: fileLayer)
            report.entries += try reader.verify(blob: { ref in try verifyOnce(ref) }, indirect: { sawIndirect = true })
            report.tables += 1
            report.tableBytes += f.size
        }
        progress?(files.count, files.count)
        let logs = options.readOnly ? replayedLogs : lock.withLock { [mem.logNumber] + imm.map(\.logNumber) }
        for n in logs.sorted() {
            let logPath = FileNames.log(path, n)
            guard fileLayer.exists(logPath) else { continue }
            let r = try LogReader(path: logPath, mode: n == logs.max() ? .tolerateTornTail : .strict, layer: fileLayer)
                .read { record in
                    // Values not yet in a table: their blob records are verified too.
                    try WriteBatch(rep: record).forEach(path: logPath) { kind, _, value in
                        if kind == .indirect {
                            guard IndirectReference(decoding: value) != nil else {
                                throw SliceError.corruption("malformed indirect reference in WAL", path: logPath)
                            }
                            sawIndirect = true
                        }
                        guard kind == .blobReference else { return }
                        guard let ref = BlobReference(decoding: value) else {
                            throw SliceError.corruption("malformed blob reference in WAL", path: logPath)
                        }
                        try verifyOnce(ref)
                    }
                }
            report.walFiles += 1
            report.walBytes += UInt64(r.validBytes)
            if let t = r.tornTailOffset {
                report.notes.append("torn record at the end of \(logPath) at offset \(t) (a write in progress)")
            }
        }
        if sawIndirect { report.indirectValues = try verifyIndirectHeaders() }
        report.notes.append(contentsOf: recoveryNotes)
        return report
    }

    /// Looks up the header of every live indirect entry (the newest visible version of its
    /// key): a missing or malformed one is corruption. Returns how many were checked.
    private func verifyIndirectHeaders() throws -> UInt64 {
        let view = try readView(nil)
        let chunks = chunkReader(view)
        let merged = try view.makeIterator(fillCache: false)
        try merged.seekToFirst()
        var lastUserKey: [UInt8] = []
        var haveLast = false
        var checked: UInt64 = 0
        while merged.isValid {
            guard let p = ParsedInternalKey(merged.keyBytes) else {
                throw SliceError(.corruption, "malformed internal key")
            }
            if p.sequence <= view.sequence
                && !(haveLast && lastUserKey.withUnsafeBytes { compareBytes($0, p.userKey) == 0 })
            {
                lastUserKey.assign(p.userKey)
                haveLast = true
                if p.kind == .indirect {
                    _ = try chunks.resolve(merged.valueBytes, entryKey: p.userKey)
                    checked += 1
                }
            }
            try merged.next()
        }
        return checked
    }

    /// A level's counts, with its data bytes before compression from each table's properties
    /// (tables the table cache cannot open count as stored).
    private func levelStats(_ level: Int, _ files: [FileMetaData], _ version: Version) -> Statistics.Level {
        var l = Statistics.Level(
            level: level, files: files.count, bytes: version.bytes(level: level), uncompressedBytes: 0,
            compressedBlocks: 0, dataBlocks: 0)
        l.uncompressedBytes = l.bytes
        for f in files {
            guard let p = try? tableCache.table(f.number).properties else { continue }
            l.uncompressedBytes += p.dataRawBytes - min(p.dataRawBytes, p.dataStoredBytes)
            l.compressedBlocks += p.compressedBlocks
            l.dataBlocks += p.dataBlocks
        }
        return l
    }

    func stats() -> Statistics {
        let (memBytes, immCount, immBytes, version, seq, hidden, compaction) = lock.withLock {
            (
                mem.approximateMemoryUsage, imm.count, imm.reduce(0) { $0 + $1.approximateMemoryUsage },
                versions.current, lastSequence, imm.reduce(mem.shadowedBlobBytes) { $0 + $1.shadowedBlobBytes },
                compactionStats
            )
        }
        let c = counters
        func v(_ a: borrowing Atomic<Int>) -> UInt64 { UInt64(max(0, a.load(ordering: .relaxed))) }
        func v(_ a: StripedCounter) -> UInt64 { UInt64(max(0, a.load())) }
        let hits = v(blockCache.hits)
        let misses = v(blockCache.misses)
        let user = v(c.userBytesWritten)
        let disk = v(c.walBytesWritten) + v(c.flushBytesWritten) + v(c.compactionBytesWritten) + v(c.blobBytesWritten)
        var stats = Statistics(
            puts: v(c.puts), deletes: v(c.deletes), gets: v(c.gets), getHits: v(c.getHits),
            writeBatches: v(c.writeBatches), lastSequence: seq,
            userBytesWritten: user, walBytesWritten: v(c.walBytesWritten), walSyncs: v(c.walSyncs),
            groupCommits: v(c.groupCommits), flushBytesWritten: v(c.flushBytesWritten),
            compactionBytesWritten: v(c.compactionBytesWritten),
            writeAmplification: user == 0 ? 0 : Double(disk) / Double(user),
            memtableBytes: UInt64(memBytes), immutableMemtables: immCount, immutableMemtableBytes: UInt64(immBytes),
            levels: version.levels.enumerated().map { levelStats($0.offset, $0.element, version) },
            flushes: v(c.flushes), compactions: v(c.compactions),
            compactionsRunning: compaction.running, subcompactions: v(c.subcompactions),
            trivialMoves: v(c.trivialMoves), compactionBytesRead: v(c.compactionBytesRead),
            stalls: v(c.stalls), stallMicros: v(c.stallNanos) / 1000, slowdowns: v(c.slowdowns),
            blockCacheHits: hits, blockCacheMisses: misses,
            blockCacheHitRatio: hits + misses == 0 ? 0 : Double(hits) / Double(hits + misses),
            blockCacheBytes: UInt64(blockCache.usage), blockCacheCapacity: UInt64(blockCache.capacity),
            blockCacheEntries: blockCache.entryCount, blockReads: v(c.blockReads), blockReadBytes: v(c.blockReadBytes),
            blocksDecompressed: v(c.blocksDecompressed), compaction: compaction,
            openTables: tableCache.openCount,
            bloomChecks: v(c.bloomChecks), bloomUsefulNegatives: v(c.bloomUseful),
            getLatency: Statistics.Latency(c.getLatency.withLock { $0 }, count: v(c.gets)),
            putLatency: Statistics.Latency(c.putLatency.withLock { $0 }, count: v(c.writeBatches)),
            tornWALTailsDropped: v(c.tornWALTails), obsoleteFilesDeleted: v(c.filesDeleted))
        let (live, garbage) = version.blobLiveAndGarbageBytes
        stats.blobFiles = version.blobs.count
        stats.blobLiveBytes = live
        stats.blobGarbageBytes = garbage
        stats.inlineWrites = v(c.inlineWrites)
        stats.checkpoints = v(c.checkpoints)
        stats.blobBytesWritten = v(c.blobBytesWritten)
        stats.blobBytesRead = v(c.blobBytesRead)
        stats.blobValuesWritten = v(c.blobValuesWritten)
        stats.blobValuesStaged = v(c.blobValuesStaged)
        stats.blobFilesDeleted = v(c.blobFilesDeleted)
        stats.blobBytesRelocated = v(c.blobBytesRelocated)
        stats.blobBytesReclaimed = v(c.blobBytesReclaimed)
        stats.blobFilesSealedEarly = v(c.blobFilesSealedEarly)
        stats.memtableBlobGarbageBytes = UInt64(hidden)
        stats.blobGarbageFlushes = v(c.blobGarbageFlushes)
        stats.idleFlushes = v(c.idleFlushes)
        stats.periodicFlushes = v(c.periodicFlushes)
        stats.spaceReserveReleases = v(c.spaceReserveReleases)
        stats.spaceReserveShortfall = UInt64(reserve.shortfall)
        stats.blobGCCompactions = v(c.blobGCCompactions)
        stats.tombstoneCompactions = v(c.tombstoneCompactions)
        stats.compactionStyle = options.compaction.style
        stats.namedSnapshots = namedSnapshotSpace()
        stats.universalSpaceAmplificationCompactions = v(c.universalSpaceCompactions)
        stats.universalSizeRatioCompactions = v(c.universalSizeRatioCompactions)
        stats.universalRunCountCompactions = v(c.universalRunCountCompactions)
        stats.walBytesDroppedByRecovery = v(c.walBytesDropped)
        stats.backgroundError = lock.withLock { backgroundError.map { "\($0)" } }
        return stats
    }

    /// Stops background work, syncs the WAL and releases the store. Frozen memtables are
    /// flushed first; the active one stays in its (synced) WAL and is replayed on open.
    func close() throws {
        let alreadyClosed: Bool = lock.withLock {
            if closed || shuttingDown { return true }
            shuttingDown = true
            stopping.store(true, ordering: .relaxed)
            lock.broadcastAll()
            return false
        }
        if alreadyClosed { return }
        if options.readOnly {
            lock.withLock { closed = true }
            directoryLock.release()
            return
        }
        var failure: Error?
        lock.withLock {
            while !writers.isEmpty { lock.wait() }
            while liveThreads > 0 {
                lock.signalBackground()
                lock.wait(seconds: 0.05)
            }
        }
        // Files still open for appends are sealed now, so the next open finds nothing to repair.
        if lock.withLock({ backgroundError == nil }) {
            for w in blobStore.takeIdleWriters() {
                do { try sealBlobFile(w) } catch { failure = failure ?? error }
            }
        }
        let closedLog: (UInt64, Int64)? = lock.withLock {
            // A store stopped by a failed write or fsync reports it again: what that call was
            // writing may not be on the disk, and a later successful sync does not change that.
            if let e = backgroundError { failure = e }
            var synced = true
            do { try blobStore.syncAll() } catch { failure = failure ?? error }
            do { try wal.sync() } catch {
                failure = failure ?? error
                synced = false
            }
            // Unmaps the log even when the sync failed.
            do { try wal.finish() } catch { failure = failure ?? error }
            closed = true
            return failure == nil && synced ? (mem.logNumber, wal.size) : nil
        }
        if let (number, length) = closedLog {
            // Recovery refuses this WAL if it is ever found shorter (cut, not torn).
            var edit = VersionEdit()
            edit.closedLog = (number, UInt64(length))
            do {
                try manifestLock.withLock {
                    let next = try logEdit(edit, base: versions.current)
                    lock.withLock { versions.install(next, edit: edit) }
                }
            } catch { failure = failure ?? error }
        }
        directoryLock.release()
        if let failure { throw failure }
    }
}

/// A consistent read view: reads through it see the store as it was when it was taken, and
/// compaction keeps every version it can see. Released when the object goes away.
public final class Snapshot: Sendable {
    let sequence: SequenceNumber
    private let engine: Engine

    init(sequence: SequenceNumber, engine: Engine) {
        self.sequence = sequence
        self.engine = engine
    }

    deinit { engine.releaseSnapshot(sequence) }
}

/// What `check` found.
public struct CheckReport: Sendable {
    public var tables = 0
    public var tableBytes: UInt64 = 0
    public var entries: UInt64 = 0
    public var walFiles = 0
    public var walBytes: UInt64 = 0
    /// Values in blob files, all read and checksummed.
    public var blobValues: UInt64 = 0
    public var blobBytes: UInt64 = 0
    /// Live indirect entries whose chunked value header was found (see `ChunkedValue`).
    public var indirectValues: UInt64 = 0
    public var notes: [String] = []
}
