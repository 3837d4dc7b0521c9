import CSliceKV
import Foundation

/// What a manual compaction's picker found for one worker.
enum ManualPick {
    /// A job, registered: run it.
    case job(CompactionJob)
    /// Work is left, but its files (or the range its outputs would cover) belong to a running
    /// job: wait for one to end.
    case wait
    /// Nothing is left for this step.
    case done
}

/// Shared state of one step of a manual compaction. Guarded by the engine lock.
private final class ManualStep: @unchecked Sendable {
    var running = 0
    var failure: Error?
    /// Output files of the bottom-level rewrite, not to be rewritten again.
    var rewritten = Set<UInt64>()
}

extension Engine {
    /// Full manual compaction: flushes memtables, then merges every level into the next down to
    /// the deepest level holding data, and rewrites deepest-level files that hold tombstones,
    /// so that deleted and overwritten data no longer takes space. Background compactions
    /// pause while it runs; its own jobs run up to `maxConcurrentCompactions` at once (this
    /// thread and helpers), on files of one level at a time: disjoint chunks of
    /// `maxSSTablesPerJob` files whose outputs do not overlap. L0 goes one job at a time (its
    /// files overlap, and an older file must not stay above newer data moved down).
    func compact(progress: ((Int, Int) -> Void)? = nil) throws {
        try ensureWritable()
        try flush()
        // Files still open for appends can be neither collected nor deleted: seal them, so a
        // manual compaction frees the space of deleted values wherever they are.
        try sealIdleBlobFiles()
        lock.withLock {
            while manualCompactionActive { lock.wait() }
            manualCompactionActive = true
            while !runningCompactions.isEmpty { lock.wait() }
        }
        defer {
            lock.withLock {
                manualCompactionActive = false
                lock.broadcastAll()
            }
        }
        let start = lock.withLock { versions.current }
        let deepest = max(1, start.levels.lastIndex { !$0.isEmpty } ?? 1)
        let chunk = options.compaction.maxSSTablesPerJob
        for level in 0..<deepest {
            progress?(level, deepest + 1)
            try runManualStep { [self] step in
                let v = versions.current
                if level == 0 {
                    guard !v.levels[0].isEmpty else { return .done }
                    guard step.running == 0 else { return .wait }
                    let oldest = Array(v.levels[0].reversed().prefix(chunk))
                    guard let job = jobIfFree(level: 0, oldest, version: v, allowTrivialMove: false) else {
                        return .wait
                    }
                    return .job(job)
                }
                // Runs of free files; a run whose outputs would overlap a running job's waits.
                let files = v.levels[level]
                var i = 0
                while i < files.count {
                    guard !files[i].beingCompacted.load(ordering: .relaxed) else {
                        i += 1
                        continue
                    }
                    var j = i + 1
                    while j < files.count, j - i < chunk, !files[j].beingCompacted.load(ordering: .relaxed) { j += 1 }
                    if let job = jobIfFree(level: level, Array(files[i..<j]), version: v, allowTrivialMove: false) {
                        return .job(job)
                    }
                    i = j
                }
                return files.isEmpty ? .done : .wait
            }
        }
        progress?(deepest, deepest + 1)
        // Bottom level: rewrite files that still carry tombstones or older versions kept for a
        // snapshot, or refer to blob files due for garbage collection (once each: what a
        // snapshot still needs survives the rewrite).
        try runManualStep { [self] step in
            let v = versions.current
            // Blob files due for garbage collection: their values may sit in any bottom file.
            let collect = !v.blobGarbageCollectionCandidates.isEmpty
            // A run of adjacent files: outputs span the run's range, which must not cover a
            // file left in the level.
            var run: [FileMetaData] = []
            var busyLeft = false
            for f in v.levels[deepest] {
                let p = try tableCache.table(f.number).properties
                let wanted =
                    !step.rewritten.contains(f.number) && (p.deletions > 0 || p.olderVersions > 0 || collect)
                if wanted && f.beingCompacted.load(ordering: .relaxed) {
                    busyLeft = true
                } else if wanted {
                    run.append(f)
                } else if !run.isEmpty {
                    break
                }
                if run.count >= chunk || (busyLeft && !run.isEmpty) { break }
            }
            guard !run.isEmpty else { return busyLeft ? .wait : .done }
            let job = CompactionJob(
                level: deepest, outputLevel: deepest, inputs: [run, []], version: v,
                smallestSnapshot: smallestSnapshotLocked, snapshots: snapshotListLocked, allowTrivialMove: false,
                collecting: relocating(v))
            guard !runningCompactions.contains(where: { $0.overlaps(job) }) else { return .wait }
            return .job(job)
        }
        progress?(deepest + 1, deepest + 1)
    }

    /// Runs the jobs `pick` hands out (called with the lock held) on up to
    /// `maxConcurrentCompactions` threads, this one included, until it answers `.done` and
    /// every job has ended. The first failure stops the step and is thrown.
    private func runManualStep(_ pick: @escaping @Sendable (ManualStep) throws -> ManualPick) throws {
        let step = ManualStep()
        let work: @Sendable () -> Void = { [self] in
            lock.lock()
            defer { lock.unlock() }
            while step.failure == nil {
                if let e = backgroundErrorLocked {
                    step.failure = e
                    break
                }
                let next: ManualPick
                do { next = try pick(step) } catch {
                    step.failure = error
                    break
                }
                switch next {
                case .done:
                    return
                case .wait:
                    guard step.running > 0 else {
                        step.failure = SliceError(.ioError, "manual compaction found busy files")
                        break
                    }
                    lock.wait()
                case .job(let job):
                    job.manual = true
                    register(job)
                    step.running += 1
                    lock.unlock()
                    let result = Result { try run(job) }
                    lock.lock()
                    switch result {
                    case .success(let outputs): step.rewritten.formUnion(outputs)
                    case .failure(let e): step.failure = step.failure ?? e
                    }
                    step.running -= 1
                    unregister(job)  // wakes the workers waiting for it
                }
            }
            lock.broadcastAll()
        }
        let helpers = options.compaction.maxConcurrentCompactions - 1
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<helpers {
            let t = Thread {
                work()
                done.signal()
            }
            t.name = "slice-compact"
            t.start()
        }
        work()
        for _ in 0..<helpers { done.wait() }
        if let failure = lock.withLock({ step.failure }) { throw failure }
    }
}
