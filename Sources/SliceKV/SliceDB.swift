/// A SliceKV store with a synchronous, thread-safe API: call it from any thread (FUSE
/// workers, command-line tools). Every call may block on disk; from `async` code use
/// `LSMTree`, which runs these calls off Swift's cooperative pool.
///
/// Keys are 1 byte to 64 KiB, values up to `Options.maxValueSize` (64 MiB by default);
/// both are arbitrary bytes, compared bytewise. Only one `SliceDB` may have a directory open
/// at a time, across processes (a `flock`ed LOCK file).
public final class SliceDB: Sendable {
    let engine: Engine

    /// Opens (creating if needed) the store in `path`.
    public init(path: String, options: Options = Options()) throws {
        engine = try Engine(path: path, options: options)
    }

    deinit { try? engine.close() }

    public var path: String { engine.path }
    public var options: Options { engine.options }
    /// Bytes of the space reserve (`Options.spaceReserve`) given up on a full disk and not
    /// taken back yet: writes that do not free space may not use them.
    public var spaceReserveShortfall: Int { engine.reserve.shortfall }

    // Concrete [UInt8] entry points: generic ones are not specialised across modules, and the
    // unspecialised path cost more than the write itself.
    public func put(_ key: [UInt8], _ value: [UInt8], keyspace: Keyspace = .user) throws {
        try engine.put(key, value, keyspace: keyspace)
    }

    /// The value of `key`, or nil when absent.
    public func get(_ key: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        try engine.get(key, keyspace: keyspace, snapshot: snapshot)
    }

    /// Deleting an absent key is not an error.
    public func delete(_ key: [UInt8], keyspace: Keyspace = .user) throws { try engine.delete(key, keyspace: keyspace) }

    public func put(_ key: some Collection<UInt8>, _ value: some Collection<UInt8>) throws {
        try engine.put(Array(key), Array(value))
    }

    public func put(_ key: String, _ value: String) throws { try engine.put(Array(key.utf8), Array(value.utf8)) }
    public func put(_ key: String, _ value: some Collection<UInt8>) throws {
        try engine.put(Array(key.utf8), Array(value))
    }

    public func get(_ key: some Collection<UInt8>, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        try engine.get(Array(key), snapshot: snapshot)
    }

    public func get(_ key: String, snapshot: Snapshot? = nil) throws -> [UInt8]? {
        try engine.get(Array(key.utf8), snapshot: snapshot)
    }

    // MARK: Large values

    /// A writer that streams one value of any size into `key` (see `ValueWriter`).
    public func valueWriter(for key: [UInt8], keyspace: Keyspace = .user) throws -> ValueWriter {
        try ValueWriter(engine: engine, key: key, keyspace: keyspace)
    }

    /// A writer that stages large values in a blob file ahead of the batch that publishes
    /// them (see `StagedValueWriter`).
    public func stagedValueWriter() -> StagedValueWriter { StagedValueWriter(engine: engine) }

    /// Stores everything readable from `fd` (to end of file) as `key`'s value, streaming it;
    /// returns the value's size.
    @discardableResult
    public func put(_ key: [UInt8], contentsOf fd: Int32, keyspace: Keyspace = .user) throws -> UInt64 {
        let w = try valueWriter(for: key, keyspace: keyspace)
        let n = try w.write(contentsOf: fd)
        try w.commit()
        return n
    }

    /// `key`'s value as the store holds it (nil when absent): put it under another key with
    /// `WriteBatch.put(_:_:keyspace:)` to move a value of any size without copying it.
    public func storedValue(_ key: [UInt8], keyspace: Keyspace = .user) throws -> StoredValue? {
        try engine.storedValue(key, keyspace: keyspace)
    }

    /// The size of `key`'s value without reading it; nil when absent.
    public func valueSize(_ key: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws -> UInt64? {
        try engine.valueSize(key, keyspace: keyspace, snapshot: snapshot)
    }

    /// Reads up to `buffer.count` bytes of `key`'s value starting at `offset`, touching only
    /// that part of a large value. Returns the bytes read (0 at or past the end) or nil when
    /// the key is absent.
    public func read(
        _ key: [UInt8], keyspace: Keyspace = .user, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer,
        snapshot: Snapshot? = nil
    ) throws -> Int? {
        try engine.read(key, keyspace: keyspace, offset: offset, into: buffer, snapshot: snapshot)
    }

    /// Up to `count` bytes of `key`'s value at `offset`; nil when the key is absent.
    public func read(
        _ key: [UInt8], keyspace: Keyspace = .user, offset: UInt64, count: Int, snapshot: Snapshot? = nil
    ) throws -> [UInt8]? {
        var missing = false
        let bytes = try [UInt8](unsafeUninitializedCapacity: count) { buf, n in
            guard
                let got = try engine.read(
                    key, keyspace: keyspace, offset: offset, into: UnsafeMutableRawBufferPointer(buf),
                    snapshot: snapshot)
            else {
                missing = true
                n = 0
                return
            }
            n = got
        }
        return missing ? nil : bytes
    }

    public func delete(_ key: some Collection<UInt8>) throws { try engine.delete(Array(key)) }
    public func delete(_ key: String) throws { try engine.delete(Array(key.utf8)) }

    /// Applies all operations of `batch` or none. `sync` overrides the store's sync policy.
    public func write(_ batch: WriteBatch, sync: Bool? = nil) throws { try engine.write(batch, sync: sync) }

    /// A cursor over `range` (default: everything) as it is now, or as of `snapshot`.
    /// With `reverse`, entries come from the end of the range down to its start.
    public func scan(
        _ range: KeyRange = .all, keyspace: Keyspace = .user, snapshot: Snapshot? = nil, reverse: Bool = false
    ) throws -> ScanCursor {
        try engine.scan(range, keyspace: keyspace, snapshot: snapshot, reverse: reverse)
    }

    /// Keys starting with `prefix`.
    public func scan(prefix: some Collection<UInt8>, snapshot: Snapshot? = nil) throws -> ScanCursor {
        try engine.scan(.prefix(Array(prefix)), snapshot: snapshot)
    }

    /// A consistent view for reads until the returned object is released.
    /// Whether any key starts with `prefix`, without a scan's setup: tables that cannot hold
    /// such a key are not read (by key range, and for prefixes ending in '/' by their filter).
    public func containsKey(withPrefix prefix: [UInt8], keyspace: Keyspace = .user, snapshot: Snapshot? = nil) throws
        -> Bool
    {
        try engine.containsKey(withPrefix: prefix, keyspace: keyspace, snapshot: snapshot)
    }

    public func snapshot() throws -> Snapshot { try engine.snapshot() }

    /// Makes every acknowledged write durable.
    public func sync() throws { try engine.sync() }

    /// Writes all memtables to table files and waits for that.
    public func flush() throws { try engine.flush() }

    /// A consistent copy of the store at one instant in `destination` (which must not exist),
    /// taken while writes continue; it opens as an ordinary store. Immutable files are hard
    /// links where the filesystem allows (so a checkpoint costs little space until the store
    /// compacts), copies otherwise. See `Checkpoint.swift`.
    public func checkpoint(to destination: String) throws { try engine.checkpoint(to: destination) }

    /// Full compaction (see `Engine.compact`). `progress` gets (step, steps).
    public func compact(progress: ((Int, Int) -> Void)? = nil) throws { try engine.compact(progress: progress) }

    /// Verifies every checksum of every live file. Throws on corruption, naming the file.
    public func check(progress: ((Int, Int) -> Void)? = nil) throws -> CheckReport {
        try engine.check(progress: progress)
    }

    public func stats() -> Statistics { engine.stats() }

    /// Drops every cached block (counters are kept).
    public func clearCache() { engine.clearCache() }

    /// Recovery notes: torn WAL tails that were dropped when this store was opened.
    public var recoveryNotes: [String] { engine.recoveryNotes }

    /// Flushes frozen memtables, syncs the WAL, stops background threads. Later calls throw
    /// `.closed`. Called by `deinit` when you do not.
    public func close() throws { try engine.close() }
}
