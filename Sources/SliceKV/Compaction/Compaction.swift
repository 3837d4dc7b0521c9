import CSliceKV
import Foundation

/// One compaction: merge `inputs[0]` (files of `level`) with `inputs[1]` (the overlapping files
/// of `outputLevel`) into new files at `outputLevel`.
final class CompactionJob: @unchecked Sendable {
    let level: Int
    let outputLevel: Int
    let inputs: [[FileMetaData]]
    /// User-key range the outputs may cover (for conflict checks between concurrent jobs).
    let smallest: [UInt8]
    let largest: [UInt8]
    let version: Version
    /// The oldest snapshot (or the last sequence when there is none): deletions at or below it
    /// hide everything older from every reader.
    let smallestSnapshot: SequenceNumber
    /// Every snapshot: hidden versions none of them sees are dropped.
    let snapshots: SnapshotList
    let allowTrivialMove: Bool
    /// Blob files whose live values this job moves to a new blob file as it meets them
    /// (garbage collection of files that are mostly garbage).
    let blobGCFiles: Set<UInt64>
    /// Writers holding values relocated by this job, and where their new records start:
    /// returned to the pool once the job's edit is installed, cut back if it fails.
    let relocationWriters = Locked<[(BlobFileWriter, UInt64)]>([])
    /// Whether another job ran during this one (`CompactionStats.overlappedJobs`). Guarded by
    /// the engine lock.
    var overlapped = false
    /// Whether a manual `compact()` runs it (`CompactionStats.manualJobs`).
    var manual = false

    /// The level of each list in `inputs`: `[level, outputLevel]` for a leveled job; a
    /// universal job merges any number of sorted runs (L0 files and whole levels).
    let inputLevels: [Int]
    /// Whether the job advances `level`'s round-robin compaction pointer (leveled jobs).
    let recordsCompactPointer: Bool

    init(
        level: Int, outputLevel: Int, inputs: [[FileMetaData]], inputLevels: [Int]? = nil, version: Version,
        smallestSnapshot: SequenceNumber, snapshots: SnapshotList, allowTrivialMove: Bool, collecting: Set<UInt64>
    ) {
        self.level = level
        self.outputLevel = outputLevel
        self.inputs = inputs
        self.inputLevels = inputLevels ?? [level, outputLevel]
        recordsCompactPointer = inputLevels == nil
        precondition(self.inputLevels.count == inputs.count)
        self.version = version
        self.smallestSnapshot = smallestSnapshot
        self.snapshots = snapshots
        self.allowTrivialMove = allowTrivialMove
        blobGCFiles = collecting
        let all = inputs.flatMap { $0 }
        smallest = Array(all.map(\.smallestUserKey).min { compareSlices($0, $1) < 0 } ?? [])
        largest = Array(all.map(\.largestUserKey).max { compareSlices($0, $1) < 0 } ?? [])
    }

    var allFiles: [FileMetaData] { inputs.flatMap { $0 } }
    /// Whether no level below the output level holds data (`Options.bottommostCompression`).
    var isBottommost: Bool { version.levels.dropFirst(outputLevel + 1).allSatisfy(\.isEmpty) }
    var inputBytes: UInt64 { allFiles.reduce(0) { $0 + $1.size } }

    /// Whether the job moves its input down without rewriting it: one file with nothing to
    /// merge below, or (universal) a whole level's run into an empty level.
    var isTrivialMove: Bool {
        guard allowTrivialMove, level != outputLevel, inputs.dropFirst().allSatisfy(\.isEmpty) else { return false }
        return inputs[0].count == 1 || (level > 0 && version.levels[outputLevel].isEmpty)
    }

    func overlaps(_ other: CompactionJob) -> Bool {
        outputLevel == other.outputLevel && compareBytes(smallest, other.largest) <= 0
            && compareBytes(other.smallest, largest) <= 0
    }
}

extension Engine {
    // MARK: Picking

    /// Chooses the most urgent compaction that does not conflict with running ones, and marks
    /// its files. REQUIRES: lock held.
    func pickCompaction() -> CompactionJob? {
        let version = versions.current
        if options.compaction.style == .universal {
            if let job = pickUniversalCompaction(version) ?? pickReclaimCompaction(version) {
                register(job)
                return job
            }
            return nil
        }
        var candidates: [(score: Double, level: Int)] = []
        let l0Score = max(
            Double(version.levels[0].count) / Double(options.l0CompactionTrigger),
            Double(level0BlobBytes(version)) / Double(options.l0BlobBytesTrigger))
        if l0Score >= 1 { candidates.append((l0Score, 0)) }
        for level in 1..<(options.numLevels - 1) {
            let score = Double(version.bytes(level: level)) / options.maxBytes(forLevel: level)
            if score >= 1 { candidates.append((score, level)) }
        }
        candidates.sort { $0.score > $1.score }
        for (_, level) in candidates {
            if let job = makeJob(level: level, version: version) {
                register(job)
                return job
            }
        }
        if let job = pickReclaimCompaction(version) {
            register(job)
            return job
        }
        return nil
    }

    /// Blob bytes the L0 tables' references cover (`TableProperties.blobFiles`).
    /// REQUIRES: lock held.
    private func level0BlobBytes(_ version: Version) -> UInt64 {
        version.levels[0].reduce(0) { sum, f in
            sum + (tableProperties(f)?.blobFiles?.values.reduce(0, +) ?? 0)
        }
    }

    private func tableProperties(_ f: FileMetaData) -> TableProperties? {
        try? tableCache.table(f.number).properties
    }

    private func isFree(_ f: FileMetaData) -> Bool { !f.beingCompacted.load(ordering: .relaxed) }

    // MARK: Picking for space

    /// Compactions that give space back rather than keep the tree in shape, tried when no level
    /// is over its size: first the tables that refer to blob files due for garbage collection
    /// (`Version.blobGarbageCollectionCandidates`; the job moves their live values to a new
    /// file, after which nothing refers to the old one and it is deleted), then tables that
    /// are mostly deletions (RocksDB's compact-on-deletion: the deletions meet what they hide
    /// and both go, with the blob bytes those values held). Each kind makes progress, so it
    /// cannot repeat forever: a collected table no longer refers to the files it was picked
    /// for, and deletions move down a level or, at the bottom, are dropped (picked there only
    /// when no snapshot needs them). REQUIRES: lock held.
    func pickReclaimCompaction(_ version: Version) -> CompactionJob? {
        let short = garbageCollectionShortOfSpace
        if short, let job = tombstoneJob(version) {
            counters.tombstoneCompactions.add(1, ordering: .relaxed)
            return job
        }
        let due = dueForCollection(version)
        if !due.isEmpty, let job = garbageCollectionJob(version, due: due) {
            counters.blobGCCompactions.add(1, ordering: .relaxed)
            return job
        }
        if !short, let job = tombstoneJob(version) {
            counters.tombstoneCompactions.add(1, ordering: .relaxed)
            return job
        }
        return nil
    }

    /// The blob files to collect now: every candidate, or, after a collection failed for space,
    /// only the one with the fewest live bytes (the least room to move). REQUIRES: lock held.
    func dueForCollection(_ version: Version) -> Set<UInt64> {
        let due = version.blobGarbageCollectionCandidates
        guard garbageCollectionShortOfSpace, due.count > 1 else { return due }
        func live(_ n: UInt64) -> UInt64 {
            guard let a = version.blobs[n], let sealed = a.sealedBytes else { return .max }
            let references = sealed + a.copiedBytes
            return references - min(a.garbageBytes, references)
        }
        return due.min { live($0) < live($1) }.map { [$0] } ?? []
    }

    /// The blob files any compaction moves the live values of as it meets them: the files due
    /// for collection, none while collections are short of space (a job that is not a
    /// collection must not need room for them). REQUIRES: lock held.
    func relocating(_ version: Version) -> Set<UInt64> {
        garbageCollectionShortOfSpace ? [] : version.blobGarbageCollectionCandidates
    }

    /// Records how a garbage collection ended (see `garbageCollectionShortOfSpace`).
    /// REQUIRES: lock held.
    func noteCollection(_ job: CompactionJob, _ result: Result<[UInt64], Error>) {
        guard !job.blobGCFiles.isEmpty else { return }
        switch result {
        case .success: garbageCollectionShortOfSpace = false
        case .failure(let e as SliceError) where e.code == .noSpace: garbageCollectionShortOfSpace = true
        case .failure: break
        }
    }

    /// A job over tables referring to any of the `due` blob files: L0 into L1 when an L0 table
    /// does, else an in-place rewrite of a run of such tables in the shallowest level holding
    /// one. REQUIRES: lock held.
    private func garbageCollectionJob(_ version: Version, due: Set<UInt64>) -> CompactionJob? {
        func refersToDue(_ f: FileMetaData) -> Bool {
            guard let p = tableProperties(f) else { return false }
            // Tables written before the property may refer to any blob file.
            guard let files = p.blobFiles else { return true }
            return files.keys.contains { due.contains($0) }
        }
        if version.levels[0].contains(where: refersToDue),
            let job = makeJob(level: 0, version: version, allowTrivialMove: false, collecting: due)
        {
            return job
        }
        for level in 1..<version.levels.count {
            if let job = rewriteJob(level: level, version: version, collecting: due, where: refersToDue) { return job }
        }
        return nil
    }

    /// A job for a table that is mostly deletions: L0 into L1; deeper, into the next level
    /// when a deeper level holds keys in its range, else a rewrite in place that drops them
    /// all (only when every reader sees the whole table, so none is kept for a snapshot).
    /// Only in a store with blob files, where a deletion may hide a large value's bytes; in
    /// others the usual triggers are left to decide (a deletion hides at most a small value).
    /// REQUIRES: lock held.
    private func tombstoneJob(_ version: Version) -> CompactionJob? {
        guard !version.blobs.isEmpty else { return nil }
        func mostlyDeletions(_ f: FileMetaData) -> Bool {
            guard let p = tableProperties(f), p.entries > 0 else { return false }
            return p.deletions * 2 >= p.entries
        }
        if version.levels[0].contains(where: mostlyDeletions), let job = makeJob(level: 0, version: version) {
            return job
        }
        let smallestSnapshot = smallestSnapshotLocked
        for level in 1..<version.levels.count {
            for f in version.levels[level] where isFree(f) && mostlyDeletions(f) {
                let deeper = ((level + 1)..<version.levels.count).contains {
                    !version.overlapping(level: $0, f.smallestUserKey, f.largestUserKey).isEmpty
                }
                if deeper {
                    if let job = jobIfFree(level: level, [f], version: version) { return job }
                } else if let p = tableProperties(f), p.largestSequence <= smallestSnapshot,
                    let job = rewriteJob(level: level, version: version, where: { $0 === f })
                {
                    return job
                }
            }
        }
        return nil
    }

    /// A job rewriting in place (`level` to `level`) the first run of adjacent free files of
    /// `level` that `wanted` picks, at most `maxSSTablesPerJob` long, whose range no running
    /// job writes to. Adjacent: the outputs span the run's key range, which must not cover a
    /// file left in the level (files of a level must not overlap). REQUIRES: lock held, `level` > 0.
    private func rewriteJob(
        level: Int, version: Version, collecting: Set<UInt64>? = nil, where wanted: (FileMetaData) -> Bool
    ) -> CompactionJob? {
        let files = version.levels[level]
        var i = 0
        while i < files.count {
            guard isFree(files[i]), wanted(files[i]) else {
                i += 1
                continue
            }
            var j = i + 1
            while j < files.count, j - i < options.compaction.maxSSTablesPerJob, isFree(files[j]), wanted(files[j]) {
                j += 1
            }
            let job = CompactionJob(
                level: level, outputLevel: level, inputs: [Array(files[i..<j]), []], version: version,
                smallestSnapshot: smallestSnapshotLocked, snapshots: snapshotListLocked, allowTrivialMove: false,
                collecting: collecting ?? relocating(version))
            if !runningCompactions.contains(where: { $0.overlaps(job) }) { return job }
            i = j
        }
        return nil
    }

    // MARK: Picking by size

    private func makeJob(
        level: Int, version: Version, allowTrivialMove: Bool = true, collecting: Set<UInt64>? = nil
    ) -> CompactionJob? {
        if level == 0 {
            // The oldest L0 files, so that any L0 file left behind is newer than what moves down.
            let l0 = version.levels[0]
            guard l0.allSatisfy(isFree) else { return nil }
            let chosen = Array(l0.reversed().prefix(options.compaction.maxSSTablesPerJob))
            return jobIfFree(
                level: 0, chosen, version: version, allowTrivialMove: allowTrivialMove, collecting: collecting)
        }
        // Round-robin through the level, starting after the last compacted key.
        let files = version.levels[level]
        guard !files.isEmpty else { return nil }
        var start = 0
        if let pointer = versions.compactPointers[level] {
            start = files.firstIndex { compareInternalKeys($0.largest, pointer) > 0 } ?? 0
        }
        for i in 0..<files.count {
            let f = files[(start + i) % files.count]
            guard isFree(f) else { continue }
            if let job = jobIfFree(level: level, [f], version: version, collecting: collecting) { return job }
        }
        return nil
    }

    /// A job for `chosen` at `level` plus overlapping files below, unless any of those are busy
    /// or its output range overlaps a running job's. REQUIRES: lock held.
    func jobIfFree(
        level: Int, _ chosen: [FileMetaData], version: Version, allowTrivialMove: Bool = true,
        collecting: Set<UInt64>? = nil
    ) -> CompactionJob? {
        guard !chosen.isEmpty else { return nil }
        let lo = chosen.map(\.smallestUserKey).min { compareSlices($0, $1) < 0 }!
        let hi = chosen.map(\.largestUserKey).max { compareSlices($0, $1) < 0 }!
        let below = version.overlapping(level: level + 1, lo, hi)
        guard below.allSatisfy({ !$0.beingCompacted.load(ordering: .relaxed) }) else { return nil }
        let job = CompactionJob(
            level: level, outputLevel: level + 1, inputs: [chosen, below], version: version,
            smallestSnapshot: smallestSnapshotLocked, snapshots: snapshotListLocked, allowTrivialMove: allowTrivialMove,
            collecting: collecting ?? relocating(version))
        guard !runningCompactions.contains(where: { $0.overlaps(job) }) else { return nil }
        return job
    }

    /// REQUIRES: lock held.
    func register(_ job: CompactionJob) {
        for f in job.allFiles { f.beingCompacted.store(true, ordering: .relaxed) }
        compactionStats.started(alongside: runningCompactions.count)
        if !runningCompactions.isEmpty {
            job.overlapped = true
            for other in runningCompactions where !other.overlapped {
                other.overlapped = true
                compactionStats.overlappedJobs += 1
            }
        }
        runningCompactions.append(job)
        if job.manual {
            compactionStats.manualJobs += 1
            compactionStats.manualPeakRunning = max(
                compactionStats.manualPeakRunning, runningCompactions.count { $0.manual })
        }
    }

    /// REQUIRES: lock held.
    func unregister(_ job: CompactionJob) {
        for f in job.allFiles { f.beingCompacted.store(false, ordering: .relaxed) }
        runningCompactions.removeAll { $0 === job }
        compactionStats.running = runningCompactions.count
        lock.broadcastAll()
    }

    // MARK: Background loop

    func compactionLoop() {
        lock.lock()
        defer { lock.unlock() }
        while !isShuttingDownLocked {
            guard backgroundErrorLocked == nil, !manualCompactionActive, monotonicNanos() >= compactionBackoffUntil,
                let job = pickCompaction()
            else {
                lock.waitForWork(seconds: 1)
                continue
            }
            lock.unlock()
            let result = Result { try run(job) }
            // Compactions give space back: one that failed for it may use the reserve.
            let outOfSpace: Bool
            if case .failure(let e as SliceError) = result, e.code == .noSpace {
                outOfSpace = true
            } else {
                outOfSpace = false
            }
            let retryNow = outOfSpace && releaseReserve()
            if case .success = result { restoreReserve() }
            lock.lock()
            noteCollection(job, result)
            if !finish(job, result) && !retryNow {
                // Out of space or a passing I/O error: try again later, writes go on.
                compactionBackoffUntil = monotonicNanos() + 1_000_000_000
                lock.waitForWork(seconds: 1)
            }
        }
    }

    /// Unregisters a job that ran, stopping the store if its failure calls for it (a MANIFEST
    /// that may or may not hold the edit, corruption). Returns whether it succeeded.
    /// REQUIRES: lock held.
    private func finish(_ job: CompactionJob, _ result: Result<[UInt64], Error>) -> Bool {
        unregister(job)
        guard case .failure(let error) = result else { return true }
        if let e = versions.manifestFailure {
            setBackgroundError(e)
        } else if let e = error as? SliceError, e.code == .corruption {
            setBackgroundError(e)
        }
        return false
    }

    /// Collects, on the calling thread (the flush thread, after a flush), the blob files the
    /// flush made due for garbage collection, waiting (boundedly) for a compaction thread
    /// that is already at it. Why here rather than only in the background loop: compaction
    /// threads run at a lower CPU priority and, on a busy machine, fell a few memtables
    /// behind; files of every flushed memtable then piled up on the disk (83 MiB for 2 MiB
    /// live, 32 keys overwritten at random, where the flush doing it holds it to about 50).
    /// While the flush thread is here, the next memtable waits in the immutable queue and
    /// writers stall once the active one fills too: the space bound comes with back-pressure.
    func collectDueBlobFiles() {
        let deadline = monotonicNanos() + 5_000_000_000
        // A few jobs at most: each one leaves the tables it rewrote referring to no due file.
        for _ in 0..<4 {
            let job: CompactionJob? = lock.withLock {
                while true {
                    guard backgroundErrorLocked == nil, !isShuttingDownLocked, !manualCompactionActive,
                        monotonicNanos() >= compactionBackoffUntil
                    else {
                        return nil
                    }
                    let version = versions.current
                    let due = dueForCollection(version)
                    guard !due.isEmpty else { return nil }
                    if let job = garbageCollectionJob(version, due: due) {
                        register(job)
                        counters.blobGCCompactions.add(1, ordering: .relaxed)
                        return job
                    }
                    // Busy tables: wait for the running jobs (one may be collecting these files,
                    // or hold the L0 files a collection needs).
                    guard !runningCompactions.isEmpty, monotonicNanos() < deadline else { return nil }
                    lock.wait(seconds: 0.1)
                }
            }
            guard let job else { return }
            let result = Result { try run(job) }
            guard
                lock.withLock({
                    noteCollection(job, result)
                    if finish(job, result) { return true }
                    compactionBackoffUntil = monotonicNanos() + 1_000_000_000
                    return false
                })
            else { return }
        }
    }

    // MARK: Running

    /// Runs a marked job and installs its result; returns the numbers of the files written.
    @discardableResult
    func run(_ job: CompactionJob) throws -> [UInt64] {
        let started = monotonicNanos()
        var edit = VersionEdit()
        for (i, files) in job.inputs.enumerated() {
            for f in files { edit.deletedFiles.append((job.inputLevels[i], f.number)) }
        }
        if let last = job.inputs[0].map(\.largest).max(by: { compareInternalKeys($0, $1) < 0 }),
            job.level != job.outputLevel, job.recordsCompactPointer
        {
            edit.compactPointers.append((job.level, last))
        }
        var outputs: [VersionEdit.NewFile] = []
        var blobDeltas: [UInt64: BlobDelta] = [:]
        if job.isTrivialMove {
            outputs = job.inputs[0].map { f in
                .init(level: job.outputLevel, number: f.number, size: f.size, smallest: f.smallest, largest: f.largest)
            }
            counters.trivialMoves.add(1, ordering: .relaxed)
        } else {
            do {
                (outputs, blobDeltas) = try merge(job)
                // The outputs refer to relocated values: those must be durable before the edit
                // that makes the outputs live (found by the power-cut tests).
                for (w, _) in job.relocationWriters.withLock({ $0 }) { try w.sync() }
            } catch {
                abandonRelocations(job)
                throw error
            }
            counters.compactionBytesRead.add(Int(job.inputBytes), ordering: .relaxed)
            counters.compactionBytesWritten.add(Int(outputs.reduce(0) { $0 + $1.size }), ordering: .relaxed)
        }
        edit.newFiles = outputs
        edit.blobDeltas = blobDeltas
        do {
            manifestLock.lock()
            defer { manifestLock.unlock() }
            let base: Version = lock.withLock {
                edit.nextFileNumber = versions.nextFileNumber
                addBlobDeletions(&edit, base: versions.current, pending: blobFilesWithPendingCopies())
                return versions.current
            }
            defer { lock.withLock { endBlobDeletions(edit) } }
            let next = try logEdit(edit, base: base)
            lock.withLock {
                versions.install(next, edit: edit)
                for o in outputs { pendingOutputs.remove(o.number) }
            }
        } catch {
            // After a failed MANIFEST write the edit may be on the disk: its files stay.
            if versions.manifestFailure == nil {
                if !job.isTrivialMove {
                    for o in outputs { try? options.fileLayer.remove(FileNames.table(path, o.number)) }
                }
                abandonRelocations(job)
            }
            lock.withLock { for o in outputs { pendingOutputs.remove(o.number) } }
            throw error
        }
        // The edit may have counted garbage in files still open for appends.
        if blobDeltas.values.contains(where: { $0.garbage > 0 }) { sealBlobFilesWorthSealing() }
        for (w, _) in job.relocationWriters.withLock({ $0 }) { releaseBlobWriter(w) }
        counters.compactions.add(1, ordering: .relaxed)
        let written = job.isTrivialMove ? 0 : outputs.reduce(0) { $0 + $1.size }
        lock.withLock {
            compactionStats.finished(
                outputLevel: job.outputLevel, trivialMove: job.isTrivialMove, filesRead: job.allFiles.count,
                filesWritten: outputs.count, bytesRead: job.isTrivialMove ? 0 : job.inputBytes, bytesWritten: written,
                nanos: monotonicNanos() - started)
        }
        return outputs.map(\.number)
    }

    /// Cuts relocated values off their new blob files again: nothing refers to them.
    private func abandonRelocations(_ job: CompactionJob) {
        for (w, start) in job.relocationWriters.withLock({ $0 }) { abandonBlobWriter(w, rollbackTo: start) }
    }

    /// Copies a live value out of a blob file that is being garbage-collected into this job's
    /// blob writer, piece by piece (values may be larger than memory). Returns the new reference.
    private func relocate(_ ref: BlobReference, for job: CompactionJob, writer: inout BlobFileWriter?) throws
        -> BlobReference
    {
        if writer == nil {
            let w = try acquireBlobWriter(forRelocation: true)
            job.relocationWriters.withLock { $0.append((w, w.end)) }
            writer = w
        }
        let w = writer!
        w.begin()
        let piece = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: piece, alignment: 16)
        defer { buffer.deallocate() }
        var crc: UInt32 = 0
        var at: UInt64 = 0
        while at < ref.length {
            if stopping.load(ordering: .relaxed) { throw SliceError(.closed, "compaction interrupted by close") }
            let n = Int(min(UInt64(piece), ref.length - at))
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try blobStore.read(ref, from: at, into: part, chunkChecksums: &crc)
            try w.append(UnsafeRawBufferPointer(part))
            at += UInt64(n)
        }
        guard crc == ref.checksum else {
            throw SliceError.corruption(
                "blob value checksum mismatch", path: FileNames.blob(path, ref.fileNumber), offset: Int64(ref.offset))
        }
        let moved = try w.finish()
        counters.blobBytesRelocated.add(Int(moved.diskBytes), ordering: .relaxed)
        return moved
    }

    /// Splits the job's key space at input-file boundaries into up to `mergeParallelism` ranges
    /// and merges them in parallel. Returns the new files in key order.
    private func merge(_ job: CompactionJob) throws -> ([VersionEdit.NewFile], [UInt64: BlobDelta]) {
        var bounds: [[UInt8]?] = [nil, nil]
        let cfg = options.compaction
        if cfg.enableParallelMerge && cfg.mergeParallelism > 1 && job.inputBytes > 2 * UInt64(options.targetFileSize) {
            let keys = job.allFiles.map { Array($0.largestUserKey) }.sorted { compareBytes($0, $1) < 0 }
            var splits: [[UInt8]] = []
            for i in 1..<cfg.mergeParallelism {
                let k = keys[min(keys.count - 1, i * keys.count / cfg.mergeParallelism)]
                // A split key is the first key of the next range: strictly after the boundary key.
                let split = k + [0]
                if splits.last.map({ compareBytes($0, split) < 0 }) ?? true { splits.append(split) }
            }
            if let last = splits.last, compareBytes(last, job.largest) > 0 { splits.removeLast() }
            bounds = [nil] + splits.map { Optional($0) } + [nil]
        }
        let ranges = bounds.count - 1
        let splitPoints = bounds
        let results = ResultsBox(count: ranges)
        if ranges == 1 {
            results.set(0, Result { try mergeRange(job, from: nil, to: nil) })
        } else {
            counters.subcompactions.add(ranges, ordering: .relaxed)
            lock.withLock { compactionStats.parallelMerges += 1 }
            // Threads of their own rather than Dispatch's pool: they take the compaction
            // threads' lower CPU priority, which a pool thread could not be given back after.
            let done = DispatchSemaphore(value: 0)
            let nice = Int32(options.compaction.threadNice)
            for i in 1..<ranges {
                let t = Thread { [self] in
                    _ = slice_set_thread_nice(nice)
                    results.set(i, Result { try mergeRange(job, from: splitPoints[i], to: splitPoints[i + 1]) })
                    done.signal()
                }
                t.name = "slice-subcompact"
                t.start()
            }
            results.set(0, Result { try mergeRange(job, from: splitPoints[0], to: splitPoints[1]) })
            for _ in 1..<ranges { done.wait() }
        }
        var outputs: [VersionEdit.NewFile] = []
        var deltas: [UInt64: BlobDelta] = [:]
        var failure: Error?
        for r in results.values {
            switch r {
            case .success(let (files, d)):
                outputs.append(contentsOf: files)
                deltas.merge(d)
            case .failure(let e): failure = failure ?? e
            case nil: failure = failure ?? SliceError(.ioError, "subcompaction did not run")
            }
        }
        if let failure {
            for o in outputs { try? options.fileLayer.remove(FileNames.table(path, o.number)) }
            lock.withLock { for o in outputs { pendingOutputs.remove(o.number) } }
            throw failure
        }
        return (outputs, deltas)
    }

    /// Merges the inputs over user keys `[from, to)` into output files, dropping versions no
    /// reader can see and tombstones with nothing beneath them.
    private func mergeRange(_ job: CompactionJob, from: [UInt8]?, to: [UInt8]?) throws -> (
        [VersionEdit.NewFile], [UInt64: BlobDelta]
    ) {
        var children: [any InternalIterator] = []
        for (files, level) in zip(job.inputs, job.inputLevels) where !files.isEmpty {
            if level == 0 {
                // L0 files overlap: one iterator each.
                for f in files { children.append(try tableCache.table(f.number).makeIterator(fillCache: false)) }
            } else {
                children.append(LevelIterator(files: files, tableCache: tableCache, fillCache: false))
            }
        }
        let input = MergingIterator(children)
        if let from {
            try input.seek(makeInternalKey(from, maxSequenceNumber, .forSeek))
        } else {
            try input.seekToFirst()
        }

        var outputs: [VersionEdit.NewFile] = []
        var blobGarbage: [UInt64: BlobDelta] = [:]
        let compression = options.compression(forLevel: job.outputLevel, bottommost: job.isBottommost)
        var relocationWriter: BlobFileWriter?
        var builder: TableBuilder?
        var builderNumber: UInt64 = 0
        func finishOutput() throws {
            guard let b = builder else { return }
            builder = nil
            let size = try b.finish()
            outputs.append(
                .init(
                    level: job.outputLevel, number: builderNumber, size: size, smallest: b.smallest, largest: b.largest)
            )
        }
        // Per-level cursors for "is there anything below this key" (keys only increase).
        var levelCursor = Array(repeating: 0, count: options.numLevels)
        func isBaseLevel(_ userKey: UnsafeRawBufferPointer) -> Bool {
            for lvl in (job.outputLevel + 1)..<options.numLevels {
                let files = job.version.levels[lvl]
                while levelCursor[lvl] < files.count {
                    let f = files[levelCursor[lvl]]
                    let c = f.largest.withUnsafeBytes {
                        compareBytes(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 8)]), userKey)
                    }
                    if c >= 0 {
                        let s = f.smallest.withUnsafeBytes {
                            compareBytes(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 8)]), userKey)
                        }
                        if s <= 0 { return false }
                        break
                    }
                    levelCursor[lvl] += 1
                }
            }
            return true
        }

        var currentUserKey: [UInt8] = []
        var haveCurrent = false
        var lastSequenceForKey = maxSequenceNumber
        do {
            while input.isValid {
                if stopping.load(ordering: .relaxed) { throw SliceError(.closed, "compaction interrupted by close") }
                let key = input.keyBytes  // valid until `input` moves, at the end of this iteration
                let decision: (drop: Bool, newKey: Bool, stop: Bool, blob: Bool) = try { (k: UnsafeRawBufferPointer) in
                    guard let p = ParsedInternalKey(k) else {
                        throw SliceError(.corruption, "malformed key in compaction input")
                    }
                    if let to, to.withUnsafeBytes({ compareBytes(p.userKey, $0) >= 0 }) {
                        return (true, false, true, false)
                    }
                    let newKey = !haveCurrent || currentUserKey.withUnsafeBytes { compareBytes($0, p.userKey) != 0 }
                    if newKey {
                        currentUserKey.removeAll(keepingCapacity: true)
                        currentUserKey.append(contentsOf: p.userKey)
                        haveCurrent = true
                        lastSequenceForKey = maxSequenceNumber
                    }
                    var drop = false
                    if lastSequenceForKey != maxSequenceNumber
                        && !job.snapshots.anySees(p.sequence, hiddenAt: lastSequenceForKey)
                    {
                        drop = true  // a newer version of this key hides it from every reader
                    } else if p.kind == .deletion && p.sequence <= job.smallestSnapshot && isBaseLevel(p.userKey) {
                        drop = true  // nothing older below for the tombstone to hide
                    }
                    lastSequenceForKey = p.sequence
                    return (drop, newKey, false, p.kind == .blobReference)
                }(key)
                if decision.stop { break }
                if decision.drop && decision.blob {
                    // The value's bytes in its blob file are garbage from this edit on.
                    guard let ref = BlobReference(decoding: input.valueBytes) else {
                        throw SliceError(.corruption, "malformed blob reference in compaction input")
                    }
                    blobGarbage[ref.fileNumber, default: .init()].garbage += ref.diskBytes
                }
                if !decision.drop {
                    if decision.newKey, let b = builder, b.estimatedFileSize >= UInt64(options.targetFileSize) {
                        try finishOutput()
                    }
                    if builder == nil {
                        builderNumber = versions.newFileNumber()
                        lock.withLock { _ = pendingOutputs.insert(builderNumber) }
                        builder = try TableBuilder(
                            path: FileNames.table(path, builderNumber), options: options, compression: compression)
                    }
                    if decision.blob && !job.blobGCFiles.isEmpty,
                        let ref = BlobReference(decoding: input.valueBytes), job.blobGCFiles.contains(ref.fileNumber)
                    {
                        // Garbage collection: the value moves to a new file, the old bytes become garbage.
                        let moved = try relocate(ref, for: job, writer: &relocationWriter)
                        blobGarbage[ref.fileNumber, default: .init()].garbage += ref.diskBytes
                        blobGarbage[moved.fileNumber, default: .init()].linked += moved.diskBytes
                        try moved.encode().withUnsafeBytes { try builder!.add(key, $0) }
                    } else {
                        try builder!.add(key, input.valueBytes)
                    }
                }
                try input.next()
            }
            try finishOutput()
        } catch {
            builder?.abandon()
            for o in outputs { try? options.fileLayer.remove(FileNames.table(path, o.number)) }
            lock.withLock {
                pendingOutputs.remove(builderNumber)
                for o in outputs { pendingOutputs.remove(o.number) }
            }
            throw error
        }
        return (outputs, blobGarbage)
    }
}

/// Per-range results of parallel merges.
private final class ResultsBox: @unchecked Sendable {
    private let lock = ConditionLock()
    private var storage: [Result<([VersionEdit.NewFile], [UInt64: BlobDelta]), Error>?]

    init(count: Int) { storage = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<([VersionEdit.NewFile], [UInt64: BlobDelta]), Error>) {
        lock.withLock { storage[i] = r }
    }

    var values: [Result<([VersionEdit.NewFile], [UInt64: BlobDelta]), Error>?] { lock.withLock { storage } }
}
