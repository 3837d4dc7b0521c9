import Synchronization

/// Open `TableReader`s by file number, at most `capacity` at a time (rounded up to a multiple of
/// the shard count).
///
/// A reader is opened outside the lock (it reads footer, index and filter), so a slow open
/// never blocks lookups of other files; two threads opening the same file at once both succeed
/// and one copy is kept. Evicted readers close their descriptor when the last user lets go.
///
/// Every get looks up each table it probes here, so the map is split into `shardCount` shards
/// by file number, each with its own lock and LRU clock: with one lock, readers on two cores
/// queued on it.
final class TableCache: Sendable {
    private struct Entry {
        let reader: TableReader
        var lastUse: UInt64
    }

    private struct State {
        var tables: [UInt64: Entry] = [:]
        var tick: UInt64 = 0
    }

    let directory: String
    let capacity: Int
    let blockCache: BlockCache
    let counters: EngineCounters
    /// Map table files rather than `pread` their blocks (`Options.mmapReads`).
    let mmapReads: Bool
    let layer: any FileLayer
    private static let shardCount = 16
    private let shards: [Locked<State>]
    /// Readers per shard (the capacity split evenly, at least one).
    private let shardCapacity: Int

    @inline(__always)
    private func shard(_ number: UInt64) -> Locked<State> {
        shards[Int((number &* 0x9E37_79B9_7F4A_7C15) >> 60) & (TableCache.shardCount - 1)]
    }

    init(
        directory: String, capacity: Int, blockCache: BlockCache, counters: EngineCounters, mmapReads: Bool,
        layer: any FileLayer
    ) {
        self.layer = layer
        self.directory = directory
        self.mmapReads = mmapReads
        self.capacity = capacity
        self.blockCache = blockCache
        self.counters = counters
        shards = (0..<TableCache.shardCount).map { _ in Locked(State()) }
        shardCapacity = max(1, (capacity + TableCache.shardCount - 1) / TableCache.shardCount)
    }

    func table(_ number: UInt64) throws -> TableReader {
        let state = shard(number)
        let cached: TableReader? = state.withLock { s in
            s.tick += 1
            // One hash per lookup (an index, then an in-place update): this runs for every
            // table a get probes.
            guard let i = s.tables.index(forKey: number) else { return nil }
            s.tables.values[i].lastUse = s.tick
            return s.tables.values[i].reader
        }
        if let cached { return cached }
        let reader = try TableReader(
            path: FileNames.table(directory, number), fileNumber: number, cache: blockCache, stats: counters,
            mmap: mmapReads, layer: layer)
        return state.withLock { s in
            if let existing = s.tables[number] { return existing.reader }
            if s.tables.count >= shardCapacity {
                // Evict the least recently used eighth in one pass rather than scanning per open.
                let victims = s.tables.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, shardCapacity / 8))
                for v in victims { s.tables[v.key] = nil }
            }
            s.tables[number] = Entry(reader: reader, lastUse: s.tick)
            return reader
        }
    }

    /// The reader of `number` if it is open (no file is opened: for reads that must not block).
    func openTable(_ number: UInt64) -> TableReader? {
        shard(number).withLock { s in s.tables[number]?.reader }
    }

    func evict(_ number: UInt64) {
        _ = shard(number).withLock { $0.tables.removeValue(forKey: number) }
    }

    var openCount: Int { shards.reduce(0) { n, s in n + s.withLock { $0.tables.count } } }
}
