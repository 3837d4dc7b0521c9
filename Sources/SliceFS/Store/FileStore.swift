import SliceKV

/// How a path's content is held in the `.user` keyspace.
enum ContentEntry: Equatable {
    /// Bytes put through the key-value API (or by the first layout): the value is the file.
    case plain(size: UInt64)
    /// A file written through the mount: an indirect entry to the chunked value of `ino`, of
    /// `size` bytes (read from its header while resolving the entry).
    case file(InodeNumber, size: UInt64)
}

/// The narrow storage protocol SliceFS runs on: point reads, ranged reads, ordered scans,
/// atomic batches and syncs, in keyspaces. `SliceStore` implements it over an embedded
/// SliceKV store; tests and other backends implement the same calls.
///
/// Contract: a `write` is atomic (all of the batch or none of it, also across a crash), and
/// every read after it returns sees it. Scans see one consistent state.
protocol FileStore: AnyObject, Sendable {
    func get(_ key: [UInt8], keyspace: Keyspace) throws -> [UInt8]?
    /// Size of a value without reading it.
    func valueSize(_ key: [UInt8], keyspace: Keyspace) throws -> UInt64?
    /// Up to `buffer.count` bytes of a value from `offset`; nil when absent.
    func read(_ key: [UInt8], keyspace: Keyspace, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int?
    /// What a `.user` key holds, without reading its bytes.
    func contentEntry(_ key: [UInt8]) throws -> ContentEntry?
    /// A `.user` value as a handle that `WriteBatch.put` stores under another key without
    /// copying its bytes (rename).
    func storedValue(_ key: [UInt8]) throws -> StoredValue?
    func write(_ batch: WriteBatch, sync: Bool) throws
    /// Writes a batch that changes only what no name and no open handle reaches any more (the
    /// chunks and record of an inode being freed), without counting it in `changeCount`: the
    /// answers kept meanwhile stay true, and an `rm` loop keeps its cached parent.
    func writeUnreachable(_ batch: WriteBatch) throws
    /// The smallest value a `StagedValueWriter` takes; nil when this store cannot stage
    /// values ahead of their batch (then every write buffers).
    var stagingThreshold: Int? { get }
    /// A writer that stages large values ahead of the batch that publishes them (a file's
    /// chunks as a stream arrives); publish them with `write(_:staged:)`.
    func stagedValueWriter() -> StagedValueWriter
    /// Writes `batch`, which may put values `stager` staged (see `StagedValueWriter.commit`).
    func write(_ batch: WriteBatch, staged stager: StagedValueWriter) throws
    /// Counts writes, bumped after each one returns (failed ones too). Equal before and after
    /// reading something, it says no write of this store landed in between, so what was read
    /// is still true (`LookupCache`).
    var changeCount: UInt64 { get }
    func sync() throws
    /// Calls `body` with each key in `[start, end)` (end nil: to the keyspace's end) in order,
    /// and its value when `values`, until it returns false.
    func scan(
        _ keyspace: Keyspace, from start: [UInt8], to end: [UInt8]?, values: Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws
    func containsKey(withPrefix prefix: [UInt8], keyspace: Keyspace) throws -> Bool
    /// The most operations one batch may hold (a truncate of a large file deletes its chunks
    /// in batches of this many).
    var maxBatchOperations: Int { get }
    /// The most bytes of keys and values one batch may hold (a file's buffers are committed
    /// before they grow past it).
    var maxBatchBytes: Int { get }
    /// Whether other mounts (other processes or hosts) change this store too: then inode
    /// numbers are claimed from it (`claimInodes`), and files unlinked while open elsewhere
    /// are not freed at mount.
    var sharedWithOtherMounts: Bool { get }
    /// Reserves `count` inode numbers for this mount alone (nil: the store has one writer,
    /// which keeps the counter in its batches).
    func claimInodes(_ count: UInt64) throws -> Range<InodeNumber>?
}
