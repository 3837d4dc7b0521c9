/// Merges sorted children into one sorted stream of internal keys (duplicates kept: the
/// consumer decides which version wins).
///
/// The minimum is found by a linear scan, as LevelDB does: a read touches a handful of
/// children (memtables, a few L0 files, one iterator per deeper level), where a scan beats
/// a heap's bookkeeping, and keys change in place inside the children, which a value heap
/// (HeapModule) cannot track.
final class MergingIterator: InternalIterator {
    private let children: [any InternalIterator]
    private var current = -1

    init(_ children: [any InternalIterator]) { self.children = children }

    var isValid: Bool { current >= 0 }
    var key: [UInt8] { children[current].key }
    var value: ArraySlice<UInt8> { children[current].value }

    private func findSmallest() {
        current = -1
        var best: [UInt8] = []
        for (i, c) in children.enumerated() where c.isValid {
            if current < 0 || compareInternalKeys(c.key, best) < 0 {
                current = i
                best = c.key
            }
        }
    }

    func seekToFirst() throws {
        for c in children { try c.seekToFirst() }
        findSmallest()
    }

    func seek(_ target: [UInt8]) throws {
        for c in children { try c.seek(target) }
        findSmallest()
    }

    func next() throws {
        try children[current].next()
        findSmallest()
    }
}

/// Walks the files of one sorted level (L1+) as one sequence, opening each table when reached.
final class LevelIterator: InternalIterator {
    private let files: [FileMetaData]
    private let tableCache: TableCache
    private let fillCache: Bool
    private var index = 0
    private var tableIter: TableIterator?
    /// Bytes of table files entered so far (compaction input accounting).
    private(set) var bytesEntered: UInt64 = 0

    init(files: [FileMetaData], tableCache: TableCache, fillCache: Bool) {
        self.files = files
        self.tableCache = tableCache
        self.fillCache = fillCache
    }

    var isValid: Bool { tableIter?.isValid ?? false }
    var key: [UInt8] { tableIter!.key }
    var value: ArraySlice<UInt8> { tableIter!.value }

    private func open(_ i: Int) throws {
        index = i
        if i < files.count {
            tableIter = try tableCache.table(files[i].number).makeIterator(fillCache: fillCache)
            bytesEntered += files[i].size
        } else {
            tableIter = nil
        }
    }

    private func skipExhausted() throws {
        while let t = tableIter, !t.isValid {
            try open(index + 1)
            try tableIter?.seekToFirst()
        }
    }

    func seekToFirst() throws {
        try open(0)
        try tableIter?.seekToFirst()
        try skipExhausted()
    }

    func seek(_ target: [UInt8]) throws {
        // First file whose largest key is >= target.
        var lo = 0
        var hi = files.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if compareInternalKeys(files[mid].largest, target) < 0 { lo = mid + 1 } else { hi = mid }
        }
        try open(lo)
        try tableIter?.seek(target)
        try skipExhausted()
    }

    func next() throws {
        try tableIter!.next()
        try skipExhausted()
    }
}
