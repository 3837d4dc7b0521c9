import Synchronization

/// Open `TableReader`s by file number, at most `capacity` at a time.
///
/// A reader is opened outside the lock (it reads footer, index and filter), so a slow open
/// never blocks lookups of other files; two threads opening the same file at once both succeed
/// and one copy is kept. Evicted readers close their descriptor when the last user lets go.
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
    private let state = Locked(State())

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
    }

    func table(_ number: UInt64) throws -> TableReader {
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
            if s.tables.count >= capacity {
                // Evict the least recently used eighth in one pass rather than scanning per open.
                let victims = s.tables.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, capacity / 8))
                for v in victims { s.tables[v.key] = nil }
            }
            s.tables[number] = Entry(reader: reader, lastUse: s.tick)
            return reader
        }
    }

    /// The reader of `number` if it is open (no file is opened: for reads that must not block).
    func openTable(_ number: UInt64) -> TableReader? {
        state.withLock { s in s.tables[number]?.reader }
    }

    func evict(_ number: UInt64) {
        _ = state.withLock { $0.tables.removeValue(forKey: number) }
    }

    var openCount: Int { state.withLock { $0.tables.count } }
}
