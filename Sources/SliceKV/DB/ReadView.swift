/// What a read sees: the memtables and version taken together under the engine's lock, and
/// the sequence number to read at. Holding it keeps every file those name alive, so a value
/// found through it (and any further key read through it, such as the chunks of an indirect
/// value) stays readable as of `sequence`, whatever flushes and compactions do meanwhile.
/// Thrown by a read told not to touch the disk when it would have to (a block not in the
/// block cache, a table not open): RocksDB's `kBlockCacheTier` reads answer `Incomplete` the
/// same way.
struct NeedsIO: Error {}

struct ReadView: Sendable {
    let mem: Memtable
    let imm: [Memtable]
    let version: Version
    let sequence: SequenceNumber
    let tableCache: TableCache

    /// The newest version of `key` in `keyspace` visible at `sequence`. `cacheOnly`: answered
    /// from memtables, open tables and cached blocks only, else `NeedsIO` is thrown.
    func lookup(_ keyspace: Keyspace, _ key: [UInt8], cacheOnly: Bool = false) throws -> Memtable.Lookup {
        try withLookupKey(keyspace, key, sequence) { lookupKey in
            let hash = BloomFilter.hash(UnsafeRawBufferPointer(rebasing: lookupKey[0..<(lookupKey.count - 8)]))
            var result: Memtable.Lookup = mem.get(lookupKey, userKeyHash: hash)
            if case .absent = result {
                for table in imm.reversed() {
                    result = table.get(lookupKey, userKeyHash: hash)
                    if case .absent = result { continue }
                    break
                }
            }
            if case .absent = result {
                result = try version.get(lookupKey, hash: hash, tableCache: tableCache, cacheOnly: cacheOnly)
            }
            return result
        }
    }

    /// Every entry of the view (all sequence numbers: callers filter), merged in internal-key
    /// order. `fillCache: false` keeps a one-off pass (a check) from evicting hot blocks.
    func makeIterator(fillCache: Bool = true) throws -> MergingIterator {
        var children: [any InternalIterator] = []
        children.reserveCapacity(1 + imm.count + version.levels.count + version.levels[0].count)
        children.append(Memtable.Iterator(mem))
        for table in imm.reversed() { children.append(Memtable.Iterator(table)) }
        for f in version.levels[0] {
            children.append(try tableCache.table(f.number).makeIterator(fillCache: fillCache))
        }
        for level in 1..<version.levels.count where !version.levels[level].isEmpty {
            children.append(LevelIterator(files: version.levels[level], tableCache: tableCache, fillCache: fillCache))
        }
        return MergingIterator(children)
    }
}
