import CFuse
import SliceKV
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// `FileStore` over an embedded SliceKV store.
final class SliceStore: FileStore {
    let db: SliceDB
    private let changes = Atomic<UInt64>(0)

    var changeCount: UInt64 { changes.load(ordering: .acquiring) }

    init(db: SliceDB) { self.db = db }

    func get(_ key: [UInt8], keyspace: Keyspace) throws -> [UInt8]? { try db.get(key, keyspace: keyspace) }

    func valueSize(_ key: [UInt8], keyspace: Keyspace) throws -> UInt64? {
        try db.valueSize(key, keyspace: keyspace)
    }

    func read(_ key: [UInt8], keyspace: Keyspace, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int?
    {
        try db.read(key, keyspace: keyspace, offset: offset, into: buffer)
    }

    func contentEntry(_ key: [UInt8]) throws -> ContentEntry? {
        guard let stored = try db.storedValue(key) else { return nil }
        if let ref = stored.indirectReference {
            guard ref.keyspace == FSKeyspace.chunks, let ino = FSKeyspace.decodeInode(ref.prefix) else {
                throw SliceError(.corruption, "indirect entry of a path points outside the file chunks")
            }
            return .file(ino, size: stored.size)
        }
        return .plain(size: stored.size)
    }

    func storedValue(_ key: [UInt8]) throws -> StoredValue? { try db.storedValue(key) }

    func write(_ batch: WriteBatch, sync: Bool) throws {
        defer { changes.add(1, ordering: .releasing) }
        try db.write(batch, sync: sync ? true : nil)
    }

    func writeUnreachable(_ batch: WriteBatch) throws { try db.write(batch, sync: nil) }

    func write(_ batch: WriteBatch, staged stager: StagedValueWriter) throws {
        defer { changes.add(1, ordering: .releasing) }
        try stager.commit(batch, sync: false)
    }

    var stagingThreshold: Int? { db.options.blobThreshold }

    func stagedValueWriter() -> StagedValueWriter { db.stagedValueWriter() }

    func sync() throws { try db.sync() }

    func scan(
        _ keyspace: Keyspace, from start: [UInt8], to end: [UInt8]?, values: Bool,
        _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) throws -> Bool
    ) throws {
        try db.scan(KeyRange(start: start, end: end), keyspace: keyspace).forEach(values: values, body)
    }

    func containsKey(withPrefix prefix: [UInt8], keyspace: Keyspace) throws -> Bool {
        try db.containsKey(withPrefix: prefix, keyspace: keyspace)
    }

    var maxBatchOperations: Int { 4096 }

    var maxBatchBytes: Int { Int.max }

    /// The mount is the store's only writer (its LOCK file).
    var sharedWithOtherMounts: Bool { false }

    func claimInodes(_ count: UInt64) throws -> Range<InodeNumber>? { nil }
}

extension SliceStore: StoreControl {
    var maxValueSize: Int { db.options.maxValueSize }
    var isReadOnly: Bool { db.options.readOnly }
    var syncsEveryWrite: Bool { db.options.syncPolicy == .always }
    var spaceReserveShortfall: Int { db.spaceReserveShortfall }
    var localDirectory: String? { db.path }
    func statsText() -> String { db.stats().prometheusText }
    func statsJSON() -> String { db.stats().jsonText }
    func flush() throws { try db.flush() }
    func compact() throws { try db.compact() }

    /// The filesystem under the store's directory.
    func statfs(_ st: UnsafeMutablePointer<statvfs>) throws {
        guard slice_statvfs(db.path, st) == 0 else { throw FSError(Glibc.errno) }
    }
}
