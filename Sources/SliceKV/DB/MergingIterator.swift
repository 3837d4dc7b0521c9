/// Merges sorted children into one sorted stream of internal keys (duplicates kept: the
/// consumer decides which version wins).
///
/// The minimum is found by a linear scan, as LevelDB does: a read touches a handful of
/// children (memtables, a few L0 files, one iterator per deeper level), where a scan beats
/// a heap's bookkeeping, and keys change in place inside the children, which a value heap
/// (HeapModule) cannot track.
final class MergingIterator: InternalIterator {
    private let children: [any InternalIterator]
    /// Each child's current key (`nil` base address: the child is invalid), refreshed only when
    /// that child moves: finding the minimum then compares raw buffers without calling into the
    /// children (protocol calls with their retains measured as a third of a sequential scan).
    private let keys: UnsafeMutableBufferPointer<UnsafeRawBufferPointer>
    @exclusivity(unchecked) private var current = -1
    /// Which way the children were last moved. Switching direction repositions every child
    /// but the current one around the current key (LevelDB's scheme).
    @exclusivity(unchecked) private var forward = true

    /// The children again, by concrete type and without reference counting (`children`
    /// keeps them alive): calls through the existential array retained and released a child
    /// on every step, a fifth of a sequential scan, and could not be inlined.
    private enum Child {
        case memtable(Unmanaged<Memtable.Iterator>)
        case table(Unmanaged<TableIterator>)
        case level(Unmanaged<LevelIterator>)
        case other
    }
    private let fast: UnsafeMutableBufferPointer<Child>

    init(_ children: [any InternalIterator]) {
        self.children = children
        keys = .allocate(capacity: max(1, children.count))
        keys.initialize(repeating: UnsafeRawBufferPointer(start: nil, count: 0))
        fast = .allocate(capacity: max(1, children.count))
        for (i, c) in children.enumerated() {
            // Exact type checks and unchecked casts: `as?` costs a dynamic cast per child, and
            // a seek builds a merge per call.
            let type = ObjectIdentifier(Swift.type(of: c))
            let object = c as AnyObject
            let child: Child =
                if type == ObjectIdentifier(Memtable.Iterator.self) {
                    .memtable(.passUnretained(unsafeDowncast(object, to: Memtable.Iterator.self)))
                } else if type == ObjectIdentifier(TableIterator.self) {
                    .table(.passUnretained(unsafeDowncast(object, to: TableIterator.self)))
                } else if type == ObjectIdentifier(LevelIterator.self) {
                    .level(.passUnretained(unsafeDowncast(object, to: LevelIterator.self)))
                } else {
                    .other
                }
            (fast.baseAddress! + i).initialize(to: child)
        }
    }

    deinit {
        keys.deallocate()
        fast.deallocate()
    }

    /// Child `i`'s key, or a nil base address when it is invalid.
    @inline(__always)
    private func childKey(_ i: Int) -> UnsafeRawBufferPointer {
        switch fast[i] {
        case .memtable(let u): return u._withUnsafeGuaranteedRef { $0.isValid ? $0.keyBytes : Self.noKey }
        case .table(let u): return u._withUnsafeGuaranteedRef { $0.isValid ? $0.keyBytes : Self.noKey }
        case .level(let u): return u._withUnsafeGuaranteedRef { $0.isValid ? $0.keyBytes : Self.noKey }
        case .other:
            let c = children[i]
            return c.isValid ? c.keyBytes : Self.noKey
        }
    }

    private static var noKey: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: nil, count: 0) }

    /// Moves child `i` one entry (`forward`: next, else prev). Inlined with a constant
    /// direction, so the branch folds away.
    @inline(__always)
    private func step(_ i: Int, forward: Bool) throws {
        switch fast[i] {
        case .memtable(let u): u._withUnsafeGuaranteedRef { forward ? $0.next() : $0.prev() }
        case .table(let u): try u._withUnsafeGuaranteedRef { forward ? try $0.next() : try $0.prev() }
        case .level(let u): try u._withUnsafeGuaranteedRef { forward ? try $0.next() : try $0.prev() }
        case .other: forward ? try children[i].next() : try children[i].prev()
        }
    }

    var isValid: Bool { current >= 0 }
    var keyBytes: UnsafeRawBufferPointer { keys[current] }
    var valueBytes: UnsafeRawBufferPointer {
        switch fast[current] {
        case .memtable(let u): return u._withUnsafeGuaranteedRef { $0.valueBytes }
        case .table(let u): return u._withUnsafeGuaranteedRef { $0.valueBytes }
        case .level(let u): return u._withUnsafeGuaranteedRef { $0.valueBytes }
        case .other: return children[current].valueBytes
        }
    }

    @inline(__always)
    private func refresh(_ i: Int) { keys[i] = childKey(i) }

    /// Runs a movement; a child that throws leaves the merge invalid (other children's cached
    /// keys may be stale) until the next seek.
    @inline(__always)
    private func moving(_ body: () throws -> Void) throws {
        do { try body() } catch {
            current = -1
            throw error
        }
    }

    private func refreshAll() { for i in children.indices { refresh(i) } }

    /// The valid child whose key compares as `order` (-1 smallest, 1 largest) against all others.
    @inline(__always)
    private func find(_ order: Int) {
        var best = -1
        var bestKey = UnsafeRawBufferPointer(start: nil, count: 0)
        for i in 0..<children.count {
            let k = keys[i]
            guard k.baseAddress != nil else { continue }
            if best < 0 || compareInternalKeys(k, bestKey) * order > 0 {
                best = i
                bestKey = k
            }
        }
        current = best
    }

    private func findSmallest() { find(-1) }

    private func findLargest() { find(1) }

    func seekToFirst() throws {
        try moving {
            for c in children { try c.seekToFirst() }
            refreshAll()
            forward = true
            findSmallest()
        }
    }

    func seek(_ target: [UInt8]) throws {
        try moving {
            for c in children { try c.seek(target) }
            refreshAll()
            forward = true
            findSmallest()
        }
    }

    func next() throws {
        try moving {
            if !forward {
                // Every other child moves to its first entry after the current key.
                let k = key
                for (i, c) in children.enumerated() where i != current {
                    try c.seek(k)
                    if c.isValid && compareInternalKeys(c.key, k) == 0 { try c.next() }
                    refresh(i)
                }
                forward = true
            }
            try step(current, forward: true)
            refresh(current)
            findSmallest()
        }
    }

    func seekToLast() throws {
        try moving {
            for c in children { try c.seekToLast() }
            refreshAll()
            forward = false
            findLargest()
        }
    }

    func prev() throws {
        try moving {
            if forward {
                // Every other child moves to its last entry before the current key.
                let k = key
                for (i, c) in children.enumerated() where i != current {
                    try c.seek(k)
                    if c.isValid { try c.prev() } else { try c.seekToLast() }
                    refresh(i)
                }
                forward = false
            }
            try step(current, forward: false)
            refresh(current)
            findLargest()
        }
    }
}

/// Walks the files of one sorted level (L1+) as one sequence, opening each table when reached.
final class LevelIterator: InternalIterator {
    private let files: [FileMetaData]
    private let tableCache: TableCache
    private let fillCache: Bool
    @exclusivity(unchecked) private var index = 0
    /// Owns the current table's iterator; `current` is the same one without reference
    /// counting, for the per-entry calls (see `MergingIterator.Child`).
    @exclusivity(unchecked) private var tableIter: TableIterator? {
        didSet { current = tableIter.map { .passUnretained($0) } }
    }
    @exclusivity(unchecked) private var current: Unmanaged<TableIterator>?
    /// Bytes of table files entered so far (compaction input accounting).
    private(set) var bytesEntered: UInt64 = 0

    init(files: [FileMetaData], tableCache: TableCache, fillCache: Bool) {
        self.files = files
        self.tableCache = tableCache
        self.fillCache = fillCache
    }

    var isValid: Bool { current?._withUnsafeGuaranteedRef { $0.isValid } ?? false }
    var keyBytes: UnsafeRawBufferPointer { current!._withUnsafeGuaranteedRef { $0.keyBytes } }
    var valueBytes: UnsafeRawBufferPointer { current!._withUnsafeGuaranteedRef { $0.valueBytes } }

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
        while let t = current, !t._withUnsafeGuaranteedRef({ $0.isValid }) {
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
        try current!._withUnsafeGuaranteedRef { try $0.next() }
        try skipExhausted()
    }

    private func skipExhaustedBackward() throws {
        while let t = current, !t._withUnsafeGuaranteedRef({ $0.isValid }) {
            guard index > 0 else {
                tableIter = nil
                return
            }
            try open(index - 1)
            try tableIter?.seekToLast()
        }
    }

    func seekToLast() throws {
        guard !files.isEmpty else {
            tableIter = nil
            return
        }
        try open(files.count - 1)
        try tableIter?.seekToLast()
        try skipExhaustedBackward()
    }

    func prev() throws {
        try current!._withUnsafeGuaranteedRef { try $0.prev() }
        try skipExhaustedBackward()
    }
}
