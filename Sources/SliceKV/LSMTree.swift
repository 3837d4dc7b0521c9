/// The `async` API of a SliceKV store.
///
/// ```swift
/// let db = try await LSMTree(path: "./data")
/// try await db.put("user:1", "Alice")
/// if let v = try await db.get("user:1") { print(String(decoding: v, as: UTF8.self)) }
/// for try await entry in db.scan(prefix: "user:") { print(entry.keyString) }
/// ```
/// Every call that can touch the disk or wait for other writers runs on SliceKV's own I/O
/// threads, never on Swift's cooperative pool. What needs neither runs where it is called:
/// reads served from memtables and cached blocks, and small writes without sync when no other writer is queued
/// and the memtable has room (`Engine.writeIfUncontended`; the WAL is appended through a
/// memory mapping). A thread hop costs 10 to 40 µs here, ten times such a write.
/// The synchronous core is available as `db`.
public final class LSMTree: Sendable {
    /// The synchronous store underneath, for code running on its own threads.
    public let db: SliceDB
    private let pool = BlockingPool.shared

    /// Opens (creating if needed) the store at `path` with `options`.
    public init(path: String, options: Options = Options()) async throws {
        db = try await BlockingPool.shared.run { try SliceDB(path: path, options: options) }
    }

    /// The async API over a store that is already open.
    public init(_ db: SliceDB) { self.db = db }

    /// Opens with a block cache of `cacheSize` blocks: the cache holds `cacheSize x blockSize`
    /// bytes (4 KiB blocks by default, so `cacheSize: 5000` is about 20 MiB).
    public convenience init(path: String, cacheSize: Int, compaction: CompactionConfig = CompactionConfig())
        async throws
    {
        var options = Options()
        options.blockCacheBytes = cacheSize * options.blockSize
        options.compaction = compaction
        try await self.init(path: path, options: options)
    }

    public func put(_ key: [UInt8], _ value: [UInt8]) async throws {
        var batch = WriteBatch()
        batch.put(key, value)
        try await write(batch)
    }

    public func put(_ key: String, _ value: String) async throws {
        try await put(Array(key.utf8), Array(value.utf8))
    }

    public func put(_ key: String, _ value: [UInt8]) async throws { try await put(Array(key.utf8), value) }

    public func get(_ key: [UInt8]) async throws -> [UInt8]? {
        if let cached = try db.engine.getWithoutIO(key) { return cached }
        return try await pool.run { [db] in try db.get(key) }
    }

    public func get(_ key: String) async throws -> [UInt8]? { try await get(Array(key.utf8)) }

    public func delete(_ key: [UInt8]) async throws {
        var batch = WriteBatch()
        batch.delete(key)
        batch.freesSpace = true
        try await write(batch)
    }

    public func delete(_ key: String) async throws { try await delete(Array(key.utf8)) }

    public func write(_ batch: WriteBatch, sync: Bool? = nil) async throws {
        if !(sync ?? (db.options.syncPolicy == .always)), try db.engine.writeIfUncontended(batch) { return }
        try await pool.run { [db] in try db.write(batch, sync: sync) }
    }

    /// Streams a value of any size from an asynchronous sequence of chunks; it becomes visible
    /// atomically once the sequence ends. Each chunk's disk write runs off the cooperative pool.
    public func put<Chunks: AsyncSequence>(_ key: [UInt8], chunks: Chunks) async throws
    where Chunks.Element == [UInt8] {
        let w = try db.valueWriter(for: key)
        do {
            for try await chunk in chunks {
                try await pool.run { try w.write(chunk) }
            }
            try await pool.run { try w.commit() }
        } catch {
            w.abort()
            throw error
        }
    }

    /// The size of `key`'s value without reading it; nil when absent.
    public func valueSize(_ key: [UInt8]) async throws -> UInt64? {
        try await pool.run { [db] in try db.valueSize(key) }
    }

    /// Up to `count` bytes of `key`'s value at `offset`; nil when absent.
    public func read(_ key: [UInt8], offset: UInt64, count: Int) async throws -> [UInt8]? {
        try await pool.run { [db] in try db.read(key, offset: offset, count: count) }
    }

    public func sync() async throws { try await pool.run { [db] in try db.sync() } }
    public func flush() async throws { try await pool.run { [db] in try db.flush() } }
    public func checkpoint(to destination: String) async throws {
        try await pool.run { [db] in try db.checkpoint(to: destination) }
    }
    public func compact() async throws { try await pool.run { [db] in try db.compact() } }
    public func close() async throws { try await pool.run { [db] in try db.close() } }
    public func snapshot() throws -> Snapshot { try db.snapshot() }
    public func stats() -> Statistics { db.stats() }
    public func clearCache() { db.clearCache() }

    /// Entries of `range` in key order, fetched in batches on the I/O threads.
    public func scan(_ range: KeyRange = .all, snapshot: Snapshot? = nil, reverse: Bool = false) -> ScanSequence {
        ScanSequence(db: db, range: range, snapshot: snapshot, reverse: reverse)
    }

    public func scan(prefix: String) -> ScanSequence { scan(.prefix(Array(prefix.utf8))) }
    public func scan(prefix: [UInt8]) -> ScanSequence { scan(.prefix(prefix)) }
}

/// An `AsyncSequence` over a key range (see `LSMTree.scan`). The view is fixed when iteration
/// starts.
public struct ScanSequence: AsyncSequence, Sendable {
    public typealias Element = KeyValue
    let db: SliceDB
    let range: KeyRange
    let snapshot: Snapshot?
    var reverse = false

    public func makeAsyncIterator() -> Iterator { Iterator(sequence: self) }

    public struct Iterator: AsyncIteratorProtocol {
        let sequence: ScanSequence
        var cursor: ScanCursor?
        var buffer: [KeyValue] = []
        var index = 0
        var finished = false

        public mutating func next() async throws -> KeyValue? {
            if index < buffer.count {
                defer { index += 1 }
                return buffer[index]
            }
            if finished { return nil }
            let seq = sequence
            let current = cursor
            let (c, batch) = try await BlockingPool.shared.run { () -> (ScanCursor, [KeyValue]) in
                let c = try current ?? seq.db.scan(seq.range, snapshot: seq.snapshot, reverse: seq.reverse)
                return (c, try c.next(batch: 256))
            }
            cursor = c
            buffer = batch
            index = 0
            if batch.count < 256 { finished = true }
            guard !batch.isEmpty else { return nil }
            index = 1
            return batch[0]
        }
    }
}
