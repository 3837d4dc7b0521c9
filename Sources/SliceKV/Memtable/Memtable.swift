import CSliceKV
import Glibc
import Synchronization

/// The in-memory sorted buffer of recent writes: an arena skiplist of internal keys
/// (LevelDB's design).
///
/// Memory: nodes and entries are carved from 2 MiB chunks that never move and are freed with
/// the memtable, so a node's address is stable: iterators hand out views of keys and values in
/// place, and an insert never copies earlier entries. Each node sits beside its entry (a random
/// insert walks ~25 nodes that are not in cache; one miss per node instead of two, which
/// measured as most of an insert's time; a class per node spends it in ARC instead):
/// ```
/// +0          keyLength  u32       internal key length (user key + 8-byte trailer)
/// +4          height     u8        1...maxHeight
/// +5          (3 bytes)
/// +8          next[height]  word   address of the next node on each level; 0 ends a level
/// +8+8*height internal key, varint(valueLength), value, padding to a multiple of 8
/// ```
/// (In memory only, so native byte order.) The head node has key length 0 and maxHeight levels.
///
/// Concurrency: one writer at a time (the group-commit leader or recovery: `add` is not
/// reentrant), any number of readers without locks. A node is fully written before it is
/// linked, and links are published with release stores and read with acquire loads, so a
/// reader that reaches a node sees its bytes; nodes are never removed or changed after linking
/// except for their `next` words. `lock` guards only the held blob files.
package final class Memtable: @unchecked Sendable {
    static let maxHeight = 12
    /// 2 MiB, aligned to 2 MiB and marked for transparent huge pages: a random insert or get
    /// touches ~25 nodes scattered over up to 64 MiB, and with 4 KiB pages nearly every one is
    /// also a TLB miss (RocksDB's `memtable_huge_page_size` does the same; random inserts measured
    /// 5% faster here, see BENCHMARKS.md).
    private static let chunkSize = 2 << 20

    private let lock = RWLock()
    /// Chunks of the arena (writer only, freed in deinit).
    /// Mapped chunks (`chunkSize` bytes each), unmapped at deinit.
    private var chunks: [UnsafeMutableRawPointer] = []
    /// Entries too large for a chunk, from malloc.
    private var largeEntries: [UnsafeMutableRawPointer] = []
    private var cursor: UnsafeMutableRawPointer?
    private var remaining = 0
    private let head: UnsafeMutableRawPointer
    /// Current list height; read by readers without the lock (a stale value only costs them
    /// a few extra steps on lower levels), so it is an atomic word too.
    private let heightWord: UnsafeMutableRawPointer
    private var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
    private let _count = Atomic<Int>(0)
    private let _usage = Atomic<Int>(0)
    /// Insert's per-level predecessors, kept to avoid an allocation per insert (writer only).
    private var prev = [UnsafeMutableRawPointer?](repeating: nil, count: Memtable.maxHeight)
    /// Whether `prev` holds the last node of every level (the last insert went at the end):
    /// then a larger key is appended without a search (sequential loads; RocksDB does the same).
    private var prevIsTail = false

    /// Blob files this memtable refers to: held so that none is deleted while a reader of this
    /// memtable may still follow a reference into it.
    private var heldBlobFiles: [BlobFile] = []

    /// REQUIRES: single writer, called before adding an entry that refers to `file`.
    func hold(_ file: BlobFile, copy: Bool) {
        lock.withWriteLock {
            if !heldBlobFiles.contains(where: { $0 === file }) { heldBlobFiles.append(file) }
            if copy { copiedInto.insert(file.number) }
        }
    }

    /// Blob files that copied references in this memtable point into (not yet counted in
    /// their accounts: that happens when the memtable is flushed).
    private var copiedInto = Set<UInt64>()

    var blobFilesWithCopies: Set<UInt64> { lock.withReadLock { copiedInto } }

    /// Blob accounting, for flushing early (`Options.memtableGarbageTrigger`). Why: an entry
    /// standing for a large value is a ~30-byte reference, so a memtable that keeps
    /// overwriting one value fills after millions of writes, and until it is flushed the
    /// overwritten values are garbage nobody has counted. Written by the single writer.
    /// - `blobBytes`: record bytes (`BlobReference.diskBytes`) the memtable's references cover.
    /// - `shadowedBlobBytes`: of those, records whose entry a newer entry of the same key in
    ///   this memtable hides: the flush drops such entries (unless a snapshot sees them), so
    ///   their records become garbage then.
    /// Copies (renames) are left out of both: dropping one frees nothing.
    private let _blobBytes = Atomic<Int>(0)
    private let _shadowedBlobBytes = Atomic<Int>(0)
    private let _deletions = Atomic<Int>(0)

    /// `shadowedBlobBytes` per blob file. Touched only by the single writer, and read by the
    /// engine under its lock when no write is in progress (at a memtable switch).
    private(set) var shadowedBlobBytesByFile: [UInt64: Int] = [:]

    var blobBytes: Int { _blobBytes.load(ordering: .relaxed) }
    var shadowedBlobBytes: Int { _shadowedBlobBytes.load(ordering: .relaxed) }
    /// Deletion entries added.
    var deletions: Int { _deletions.load(ordering: .relaxed) }

    /// The blob file and record bytes of a reference entry's value; nil for copies and other kinds.
    @inline(__always)
    private static func blobRecord(_ kind: ValueKind, _ value: UnsafeRawBufferPointer) -> (file: UInt64, bytes: Int)? {
        guard kind == .blobReference, let ref = BlobReference(decoding: value), !ref.isCopy else { return nil }
        return (ref.fileNumber, Int(clamping: ref.diskBytes))
    }

    /// The WAL file that holds this memtable's writes.
    let logNumber: UInt64

    /// A blocked bloom filter over the user keys and their '/'-ended prefixes (as in table
    /// filters): a get or a directory check that misses this memtable skips the skiplist search,
    /// whose ~25 scattered nodes cost a cache miss each (RocksDB's memtable bloom). One 512-bit
    /// block per key, six bits in it, so a probe touches one cache line. Bits are set by the
    /// single writer with relaxed atomic stores before the entry is linked, and a reader reaches them after taking
    /// the engine lock that published the entry's sequence number.
    private let filter: UnsafeMutablePointer<UInt>
    private let filterBlocks: Int

    /// `expectedBytes`: the memtable budget, which sizes the filter (one bit per 8 bytes).
    package init(logNumber: UInt64, expectedBytes: Int = 64 << 20) {
        self.logNumber = logNumber
        var blocks = 8
        while blocks * 512 < expectedBytes / 8 { blocks *= 2 }
        filterBlocks = blocks
        filter = .allocate(capacity: blocks * 8)
        filter.initialize(repeating: 0, count: blocks * 8)
        heightWord = .allocate(byteCount: 8, alignment: 8)
        heightWord.storeBytes(of: 1, as: UInt.self)
        let headSize = 8 + 8 * Memtable.maxHeight
        head = .allocate(byteCount: headSize, alignment: 8)
        head.initializeMemory(as: UInt8.self, repeating: 0, count: headSize)
        head.storeBytes(of: UInt32(0), toByteOffset: 0, as: UInt32.self)
        head.storeBytes(of: UInt8(Memtable.maxHeight), toByteOffset: 4, as: UInt8.self)
    }

    deinit {
        filter.deallocate()
        for c in chunks { munmap(c, Memtable.chunkSize) }
        for e in largeEntries { free(e) }
        head.deallocate()
        heightWord.deallocate()
    }

    /// Bytes of entries, nodes and the filter; compared with the memtable budget.
    var approximateMemoryUsage: Int { _usage.load(ordering: .relaxed) + filterBlocks * 64 }

    @inline(__always)
    private func filterProbe(_ hash: UInt64, _ body: (UnsafeMutablePointer<UInt>, UInt) -> Bool) -> Bool {
        let block = filter + (Int(truncatingIfNeeded: hash >> 40) & (filterBlocks - 1)) * 8
        var x = hash
        for _ in 0..<6 {
            let bit = Int(x & 511)
            if !body(block + bit >> 6, UInt(1) << UInt(bit & 63)) { return false }
            x = x >> 9 | x << 55
        }
        return true
    }

    /// REQUIRES: the single writer (so a plain load-or-store needs no locked instruction).
    private func filterAdd(_ hash: UInt64) {
        _ = filterProbe(hash) { word, bit in
            let old = slice_load_relaxed(word)
            if old & bit == 0 { slice_store_relaxed(word, old | bit) }
            return true
        }
    }

    /// Starts loading the filter line `add` will set for `key`. Why: the filter is megabytes
    /// and each key lands on a random line, a cache miss per put (~5% of `fillseq` in `perf`);
    /// issued before the WAL append, the miss overlaps it instead of stalling the insert.
    func prefetchFilter(for key: UnsafeRawBufferPointer) {
        let hash = BloomFilter.hash(key)
        slice_prefetch_write(filter + (Int(truncatingIfNeeded: hash >> 40) & (filterBlocks - 1)) * 8)
    }

    /// False when no key with this hash (of a user key, or of a prefix ending in '/') was added.
    func mayContain(hash: UInt64) -> Bool {
        filterProbe(hash) { word, bit in slice_load_relaxed(word) & bit != 0 }
    }

    var count: Int { _count.load(ordering: .relaxed) }

    var isEmpty: Bool { count == 0 }

    // MARK: Writing

    /// `n` bytes, 8-aligned, that never move. Entries over a quarter chunk get their own chunk.
    private func allocate(_ n: Int) -> UnsafeMutableRawPointer {
        if n > remaining {
            if n > Memtable.chunkSize / 4 {
                let c = malloc(n)!
                largeEntries.append(c)
                return c
            }
            let c = Memtable.mapChunk()
            chunks.append(c)
            cursor = c
            remaining = Memtable.chunkSize
        }
        let p = cursor!
        cursor = p + n
        remaining -= n
        return p
    }

    /// A 2 MiB-aligned chunk straight from the kernel. Why not malloc: glibc raises its mmap
    /// threshold after the first large free, so later chunks came from the heap and a flushed
    /// memtable's memory was never returned (the heap peaked at 308 MiB over a db_bench run,
    /// 103 MiB with mapped chunks).
    /// Aligned so the kernel can back it with one huge page (`MADV_HUGEPAGE`, a hint).
    private static func mapChunk() -> UnsafeMutableRawPointer {
        let size = chunkSize
        guard let raw = mmap(nil, 2 * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
            raw != MAP_FAILED
        else { fatalError("out of memory for a memtable chunk") }
        let address = UInt(bitPattern: raw)
        let aligned = (address + UInt(size) - 1) & ~(UInt(size) - 1)
        let head = Int(aligned - address)
        if head > 0 { munmap(raw, head) }
        if size - head > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + UInt(size))!, size - head) }
        let chunk = UnsafeMutableRawPointer(bitPattern: aligned)!
        _ = madvise(chunk, size, MADV_HUGEPAGE)
        return chunk
    }

    @inline(__always)
    private static func varintLength(_ v: Int) -> Int {
        var n = 1
        var x = UInt(v) >> 7
        while x != 0 {
            n += 1
            x >>= 7
        }
        return n
    }

    /// REQUIRES: single writer (the group-commit leader or recovery).
    package func add(
        _ seq: SequenceNumber, _ kind: ValueKind, key: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer
    ) {
        let h = randomHeight()
        let keyLength = key.count + 8
        let size = (8 + 8 * h + keyLength + Memtable.varintLength(value.count) + value.count + 7) & ~7
        let node = allocate(size)
        node.storeBytes(of: UInt32(keyLength), toByteOffset: 0, as: UInt32.self)
        node.storeBytes(of: UInt32(h), toByteOffset: 4, as: UInt32.self)
        var p = node + 8 + 8 * h
        if let k = key.baseAddress, key.count > 0 { p.copyMemory(from: k, byteCount: key.count) }
        p += key.count
        p.storeBytes(of: packTrailer(seq, kind).littleEndian, as: UInt64.self)
        p += 8
        var v = UInt(value.count)
        while v >= 0x80 {
            p.storeBytes(of: UInt8(truncatingIfNeeded: v) | 0x80, as: UInt8.self)
            p += 1
            v >>= 7
        }
        p.storeBytes(of: UInt8(v), as: UInt8.self)
        p += 1
        if let b = value.baseAddress, value.count > 0 { p.copyMemory(from: b, byteCount: value.count) }

        filterAdd(BloomFilter.hash(key))
        for i in 0..<key.count where key[i] == 0x2f {
            filterAdd(BloomFilter.hash(UnsafeRawBufferPointer(rebasing: key[0...i])))
        }
        let height = Int(slice_load_relaxed(heightWord))
        let target = Memtable.key(node)
        prev.withUnsafeMutableBufferPointer { pv in
            if prevIsTail, let last = pv[0], compareInternalKeys(Memtable.key(last), target) < 0 {
                for l in height..<max(height, h) { pv[l] = head }
            } else {
                var x = head
                var level = max(height, h) - 1
                while true {
                    let next = Memtable.next(x, level)
                    // As in `seekNode`: the node one level down is prefetched before the compare.
                    if level > 0, let below = Memtable.next(x, level - 1), below != next { slice_prefetch_read(below) }
                    if let next, compareInternalKeys(Memtable.key(next), target) < 0 {
                        x = next
                    } else {
                        pv[level] = x
                        if level == 0 { break }
                        level -= 1
                    }
                }
            }
            for l in 0..<h {
                // The new node's links first (not yet visible), then publish it level by level.
                (node + 8 + 8 * l).storeBytes(of: slice_load_relaxed(pv[l]! + 8 + 8 * l), as: UInt.self)
                slice_store_release(pv[l]! + 8 + 8 * l, UInt(bitPattern: node))
            }
            // When the node went at the end, it is the last node on its levels; the others keep theirs.
            prevIsTail = Memtable.next(node, 0) == nil
            if prevIsTail { for l in 0..<h { pv[l] = node } }
        }
        if h > height { slice_store_release(heightWord, UInt(h)) }
        _count.add(1, ordering: .relaxed)
        _usage.add(size, ordering: .relaxed)
        if kind == .deletion { _deletions.add(1, ordering: .relaxed) }
        if let referenced = Memtable.blobRecord(kind, value) { _blobBytes.add(referenced.bytes, ordering: .relaxed) }
        // The version this entry hides, when it is in this memtable, is the next node (same
        // user key, older sequence): no search needed.
        if !prevIsTail, let older = Memtable.next(node, 0) {
            let olderKey = Memtable.key(older)
            if olderKey.count == keyLength,
                compareBytes(UnsafeRawBufferPointer(rebasing: olderKey[0..<key.count]), key) == 0,
                let olderKind = ValueKind(rawValue: olderKey[key.count])  // the trailer's low byte
            {
                if let hidden = Memtable.blobRecord(olderKind, Memtable.value(older)) {
                    _shadowedBlobBytes.add(hidden.bytes, ordering: .relaxed)
                    shadowedBlobBytesByFile[hidden.file, default: 0] += hidden.bytes
                }
            }
        }
    }

    private func randomHeight() -> Int {
        var h = 1
        while h < Memtable.maxHeight {
            rng ^= rng << 13
            rng ^= rng >> 7
            rng ^= rng << 17
            if rng & 3 != 0 { break }  // branching factor 4
            h += 1
        }
        return h
    }

    // MARK: Reading

    @inline(__always)
    private static func next(_ node: UnsafeMutableRawPointer, _ level: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: slice_load_acquire(node + 8 + 8 * level))
    }

    @inline(__always)
    fileprivate static func key(_ node: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let keyLength = Int(node.load(as: UInt32.self))
        let height = Int(node.load(fromByteOffset: 4, as: UInt8.self))
        return UnsafeRawBufferPointer(start: node + 8 + 8 * height, count: keyLength)
    }

    @inline(__always)
    fileprivate static func value(_ node: UnsafeMutableRawPointer) -> UnsafeRawBufferPointer {
        let k = key(node)
        var p = k.baseAddress! + k.count
        var n = 0
        var shift = 0
        while true {
            let b = p.load(as: UInt8.self)
            p += 1
            n |= Int(b & 0x7f) << shift
            if b < 0x80 { break }
            shift += 7
        }
        return UnsafeRawBufferPointer(start: p, count: n)
    }

    private var height: Int { Int(slice_load_acquire(heightWord)) }

    /// The last node whose key is < `target` (the last node when `target` is nil); nil if none.
    /// With `stopLevel` > 0: the last node on that level whose key is < `target`, which may be
    /// the head.
    private func lastNode(before target: UnsafeRawBufferPointer?, stopLevel: Int = 0) -> UnsafeMutableRawPointer? {
        var x = head
        var level = height - 1
        while true {
            let next = Memtable.next(x, level)
            if level > 0, let below = Memtable.next(x, level - 1), below != next { slice_prefetch_read(below) }
            if let next, target.map({ compareInternalKeys(Memtable.key(next), $0) < 0 }) ?? true {
                x = next
            } else {
                if level <= stopLevel { return stopLevel > 0 ? x : (x == head ? nil : x) }
                level -= 1
            }
        }
    }

    /// The first node whose key is >= `target`; nil if none.
    ///
    /// Each comparison loads a node that is usually not in cache. Before it, the node one
    /// level down from `x` is prefetched: that is the next one compared whenever this
    /// comparison sends the search down, so two misses are in flight instead of one.
    private func seekNode(_ target: UnsafeRawBufferPointer) -> UnsafeMutableRawPointer? {
        var x = head
        var level = height - 1
        while true {
            let next = Memtable.next(x, level)
            if level > 0, let below = Memtable.next(x, level - 1), below != next { slice_prefetch_read(below) }
            if let next, compareInternalKeys(Memtable.key(next), target) < 0 {
                x = next
            } else {
                if level == 0 { return next }
                level -= 1
            }
        }
    }

    package enum Lookup {
        case found([UInt8])
        /// The value is in a blob file; the payload is the encoded `BlobReference`.
        case blob([UInt8])
        /// The value is a chunked value elsewhere; the payload is the encoded `IndirectReference`.
        case indirect([UInt8])
        case deleted
        case absent
    }

    /// The newest version of the lookup key's user key with sequence <= the lookup's.
    /// `userKeyHash` (`BloomFilter.hash` of the user key), when given, lets the filter answer
    /// most misses.
    package func get(_ lookupKey: [UInt8], userKeyHash: UInt64? = nil) -> Lookup {
        lookupKey.withUnsafeBytes { get($0, userKeyHash: userKeyHash) }
    }

    func get(_ target: UnsafeRawBufferPointer, userKeyHash: UInt64? = nil) -> Lookup {
        if let userKeyHash, !mayContain(hash: userKeyHash) { return .absent }
        guard let node = seekNode(target), let parsed = ParsedInternalKey(Memtable.key(node)),
            compareBytes(parsed.userKey, UnsafeRawBufferPointer(rebasing: target[0..<(target.count - 8)])) == 0
        else { return .absent }
        let v = { Array(Memtable.value(node)) }
        switch parsed.kind {
        case .deletion: return .deleted
        case .value: return .found(v())
        case .blobReference: return .blob(v())
        case .indirect: return .indirect(v())
        }
    }

    /// Iterates entries in internal-key order without locks. Safe while inserts continue: it
    /// sees entries linked before each step; callers filter by sequence number. Keys and values
    /// are views of the arena, valid as long as the iterator (which holds the table) lives.
    final class Iterator: InternalIterator {
        private let table: Memtable
        @exclusivity(unchecked) private var node: UnsafeMutableRawPointer?
        /// Reverse iteration: the nodes just before `node`, in key order, that `prev` hands out
        /// from the back before searching again. A skiplist has no back links, so each `prev`
        /// was a search from the head (~20 cache misses in a full memtable); one search that
        /// stops two levels up and a walk along the bottom level yields ~16 predecessors.
        @exclusivity(unchecked) private var before: [UnsafeMutableRawPointer] = []

        init(_ table: Memtable) { self.table = table }

        var isValid: Bool { node != nil }
        var keyBytes: UnsafeRawBufferPointer { Memtable.key(node!) }
        var valueBytes: UnsafeRawBufferPointer { Memtable.value(node!) }

        func seekToFirst() {
            before.removeAll(keepingCapacity: true)
            node = Memtable.next(table.head, 0)
        }

        func seek(_ target: [UInt8]) {
            before.removeAll(keepingCapacity: true)
            node = target.withUnsafeBytes { table.seekNode($0) }
        }

        /// Also starts loading the node after the new one: nodes sit in insertion order, so in
        /// a memtable of random writes each step of a scan is a cache miss, which the prefetch
        /// overlaps with the merge's work on other children until the next step.
        func next() {
            before.removeAll(keepingCapacity: true)
            let n = Memtable.next(node!, 0)
            node = n
            if let n, let after = Memtable.next(n, 0) { slice_prefetch_read(after) }
        }

        func seekToLast() {
            before.removeAll(keepingCapacity: true)
            node = table.lastNode(before: nil)
        }

        /// Nodes are never unlinked, so `node` stays reachable along the bottom level from any
        /// earlier node; entries inserted meanwhile may join `before` (newer sequence numbers,
        /// which the reader filters, as after any search).
        func prev() {
            if before.isEmpty {
                let current = node!
                let start = table.lastNode(before: Memtable.key(current), stopLevel: 2)!
                var n = start == table.head ? Memtable.next(table.head, 0) : start
                while let m = n, m != current {
                    before.append(m)
                    n = Memtable.next(m, 0)
                }
            }
            node = before.popLast()
        }
    }
}
