/// One sorted run of the tree as universal compaction sees it: an L0 file, or a whole level.
struct SortedRun {
    let level: Int
    let files: [FileMetaData]
    let size: UInt64
    let busy: Bool

    init(level: Int, files: [FileMetaData]) {
        self.level = level
        self.files = files
        size = files.reduce(0) { $0 + $1.size }
        busy = files.contains { $0.beingCompacted.load(ordering: .relaxed) }
    }
}

extension Engine {
    /// Universal (size-tiered) picking, after RocksDB's: the runs are the L0 files (newest
    /// first) and then each non-empty level, older deeper. Once there are at least
    /// `l0CompactionTrigger` runs, the first that applies wins:
    /// 1. space amplification: the runs above the oldest add up to more than
    ///    `maxSizeAmplificationPercent` of it: merge everything into one run at the bottom;
    /// 2. size ratio: from the newest free run, take older neighbours while each is at most
    ///    `sizeRatioPercent` larger than those taken so far; at least `minMergeWidth` runs;
    /// 3. too many runs: merge the newest free ones, enough to get back to the trigger.
    ///
    /// Where a merge goes (`universalJob`) keeps the read order right: a merge is a window of
    /// runs neighbouring in age, its output lands at the level of the oldest run in it (the
    /// bottom level when that is the oldest run of all), and a window holding an L0 file runs
    /// through the oldest L0 file, since an older file left in L0 would be read before the
    /// newer output below it. REQUIRES: lock held.
    func pickUniversalCompaction(_ version: Version) -> CompactionJob? {
        var runs = version.levels[0].map { SortedRun(level: 0, files: [$0]) }
        for level in 1..<version.levels.count where !version.levels[level].isEmpty {
            runs.append(SortedRun(level: level, files: version.levels[level]))
        }
        let trigger = options.l0CompactionTrigger
        guard runs.count >= max(2, trigger) else { return nil }
        let u = options.compaction.universal
        if runs.allSatisfy({ !$0.busy }) {
            let oldest = runs.last!.size
            let newer = runs.dropLast().reduce(0) { $0 + $1.size }
            if Double(newer) * 100 > Double(oldest) * Double(u.maxSizeAmplificationPercent),
                let job = universalJob(runs, 0, runs.count, version)
            {
                counters.universalSpaceCompactions.add(1, ordering: .relaxed)
                return job
            }
        }
        for start in runs.indices where !runs[start].busy {
            var size = Double(runs[start].size)
            var end = start + 1
            while end < runs.count, !runs[end].busy, end - start < u.maxMergeWidth,
                Double(runs[end].size) <= size * Double(100 + u.sizeRatioPercent) / 100
            {
                size += Double(runs[end].size)
                end += 1
            }
            if end - start >= u.minMergeWidth, let job = universalJob(runs, start, end, version) {
                counters.universalSizeRatioCompactions.add(1, ordering: .relaxed)
                return job
            }
        }
        if runs.count > trigger {
            let width = max(u.minMergeWidth, runs.count - trigger + 1)
            for start in runs.indices where !runs[start].busy && start + width <= runs.count {
                if let job = universalJob(runs, start, start + width, version) {
                    counters.universalRunCountCompactions.add(1, ordering: .relaxed)
                    return job
                }
            }
        }
        return nil
    }

    /// A job moving L1's run (`runs[l1]`) unchanged into the deepest empty level above the
    /// next older run, when there is one and the run is free. REQUIRES: lock held.
    private func pushDown(_ runs: [SortedRun], l1: Int, _ version: Version) -> CompactionJob? {
        let run = runs[l1]
        guard !run.busy else { return nil }
        let limit = l1 + 1 < runs.count ? runs[l1 + 1].level : options.numLevels
        guard limit - 1 > run.level else { return nil }
        let job = CompactionJob(
            level: run.level, outputLevel: limit - 1, inputs: [run.files], inputLevels: [run.level],
            version: version, smallestSnapshot: smallestSnapshotLocked, snapshots: snapshotListLocked,
            allowTrivialMove: true, collecting: [])
        guard job.isTrivialMove, !runningCompactions.contains(where: { $0.overlaps(job) }) else { return nil }
        return job
    }

    /// The job merging runs `start..<end` (widened to keep the read order, see
    /// `pickUniversalCompaction`), or nil when a run in it is busy or its output would
    /// overlap a running job's. REQUIRES: lock held.
    private func universalJob(_ runs: [SortedRun], _ start: Int, _ end: Int, _ version: Version) -> CompactionJob? {
        var end = end
        let l0Runs = runs.prefix { $0.level == 0 }.count
        if start < l0Runs { end = max(end, l0Runs) }
        let bottom = options.numLevels - 1
        var output: Int
        if end >= runs.count {
            output = bottom
        } else if runs[end - 1].level > 0 {
            output = runs[end - 1].level
        } else if runs[end].level > 1 {
            // Only L0 files: into the empty level just above the next older run.
            output = runs[end].level - 1
        } else if let move = pushDown(runs, l1: end, version) {
            // No room above L1, but an empty level below it: L1's run moves there first (its
            // files keep their bytes), and the L0 files follow into L1's place next time.
            return move
        } else {
            // No room above L1 and none below it: take L1's run along.
            end += 1
            output = end >= runs.count ? bottom : runs[end - 1].level
        }
        end = min(end, runs.count)
        let window = runs[start..<end]
        guard window.count >= 2 || window.first?.level != output, window.allSatisfy({ !$0.busy }) else { return nil }
        var inputs: [[FileMetaData]] = []
        var levels: [Int] = []
        let l0Files = window.filter { $0.level == 0 }.flatMap(\.files)
        if !l0Files.isEmpty {
            inputs.append(l0Files)
            levels.append(0)
        }
        for run in window where run.level > 0 {
            inputs.append(run.files)
            levels.append(run.level)
        }
        let job = CompactionJob(
            level: levels[0], outputLevel: output, inputs: inputs, inputLevels: levels, version: version,
            smallestSnapshot: smallestSnapshotLocked, snapshots: snapshotListLocked, allowTrivialMove: true,
            collecting: relocating(version))
        guard !runningCompactions.contains(where: { $0.overlaps(job) }) else { return nil }
        return job
    }
}
