import CSliceKV
import Synchronization

/// An open SSTable: footer, index and filter in memory, data blocks read through the block
/// cache, from a read-only mapping of the file (`FileMapping`) or with `pread`.
///
/// Checksums: a block read with `pread` is verified every time. A mapped block is verified the
/// first time a reader touches it; a bit per block then records that the mapped bytes passed,
/// so later reads trust it as they trust a block-cache hit (why: checking 4 KiB of cold page
/// cache on every read measured as a third of a random seek, which LevelDB skips entirely).
/// Compaction and `check` read with `fillCache: false`: with `pread`, verified every time, so
/// damage on disk is still found before it is copied into new files. Immutable and shared by all readers.
final class TableReader: @unchecked Sendable {
    let fileNumber: UInt64
    let file: File
    let fileSize: UInt64
    /// The whole file, mapped read-only (nil: blocks are read with `pread`).
    private let mapping: FileMapping?
    /// With a mapping: one bit per 256-byte slot of the file, set once the uncompressed data
    /// block starting in that slot has passed its checksum (uncompressed data blocks are at
    /// least 256 bytes, except the last, so no two share a slot; compressed ones may be
    /// smaller and are verified at every read from the file). Atomic words, set with relaxed
    /// `or`: the bytes they vouch for never change.
    private let verifiedBits: UnsafeMutablePointer<UInt>?
    let index: Block
    /// The classic filter of a table written before blocked filters (nil otherwise).
    let filter: [UInt8]?
    let blockedFilter: BlockedBloomFilter?
    let properties: TableProperties
    private let cache: BlockCache?
    private let stats: EngineCounters?

    var path: String { file.path }

    init(
        path: String, fileNumber: UInt64, cache: BlockCache?, stats: EngineCounters?, mmap: Bool = false,
        layer: any FileLayer
    ) throws {
        self.fileNumber = fileNumber
        self.cache = cache
        self.stats = stats
        file = try layer.openForReading(path)
        fileSize = UInt64(try file.size())
        guard fileSize >= UInt64(TableFormat.footerSize) else {
            throw SliceError.corruption("file too short to be a table", path: path, offset: 0)
        }
        mapping = mmap ? FileMapping(file, size: Int(fileSize)) : nil
        if mapping != nil {
            let words = Int(fileSize >> 8) / UInt.bitWidth + 1
            verifiedBits = .allocate(capacity: words)
            verifiedBits!.initialize(repeating: 0, count: words)
        } else {
            verifiedBits = nil
        }
        let footerOffset = Int64(fileSize) - Int64(TableFormat.footerSize)
        let footer = try file.read(count: TableFormat.footerSize, at: footerOffset)
        let (metaHandle, indexHandle): (BlockHandle, BlockHandle) = try footer.withUnsafeBytes { f in
            guard f.fixed64(at: 40) == TableFormat.magic else {
                throw SliceError.corruption("bad table magic number", path: path, offset: footerOffset + 40)
            }
            guard CRC32C.unmask(f.fixed32(at: 36)) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: f[0..<36]))
            else {
                throw SliceError.corruption("table footer checksum mismatch", path: path, offset: footerOffset)
            }
            guard TableFormat.readableVersions.contains(f.fixed32(at: 32)) else {
                throw SliceError(.unsupportedFormat, "table format version \(f.fixed32(at: 32))", path: path)
            }
            return (
                BlockHandle(offset: f.fixed64(at: 0), size: f.fixed64(at: 8)),
                BlockHandle(offset: f.fixed64(at: 16), size: f.fixed64(at: 24))
            )
        }
        index = try TableReader.readBlock(file, indexHandle, fileSize: fileSize)
        let meta = try TableReader.readBlock(file, metaHandle, fileSize: fileSize)
        let metaIter = meta.makeIterator(path: path)
        var filter: [UInt8]?
        var blockedFilter: BlockedBloomFilter?
        var properties = TableProperties()
        try metaIter.seekToFirst()
        while metaIter.isValid {
            guard let handle = BlockHandle.decode(metaIter.valueBytes) else {
                throw SliceError.corruption("bad meta block handle", path: path)
            }
            if metaIter.key == TableFormat.blockedFilterName {
                let bytes = try TableReader.readRaw(file, handle, fileSize: fileSize)
                guard let f = BlockedBloomFilter(bytes) else {
                    throw SliceError.corruption("malformed filter block", path: path, offset: Int64(handle.offset))
                }
                blockedFilter = f
            } else if metaIter.key == TableFormat.filterName {
                filter = try TableReader.readRaw(file, handle, fileSize: fileSize)
            } else if metaIter.key == TableFormat.propertiesName {
                let props = try TableReader.readBlock(file, handle, fileSize: fileSize).makeIterator(path: path)
                try props.seekToFirst()
                while props.isValid {
                    var p = 0
                    let v = props.value.withUnsafeBytes { $0.varint(at: &p) } ?? 0
                    properties.set(String(decoding: props.key, as: UTF8.self), v)
                    try props.next()
                }
            }
            try metaIter.next()
        }
        self.filter = filter
        self.blockedFilter = blockedFilter
        self.properties = properties
    }

    /// Reads a block and its trailer, verifying the checksum; returns the block decompressed.
    static func readRaw(_ file: File, _ handle: BlockHandle, fileSize: UInt64) throws -> [UInt8] {
        let total = try checkBounds(handle, fileSize: fileSize, path: file.path)
        var bytes = try file.read(count: total, at: Int64(handle.offset))
        let compression = try bytes.withUnsafeBytes {
            try verifyTrailer($0, Int(handle.size), path: file.path, offset: Int64(handle.offset))
        }
        bytes.removeLast(TableFormat.trailerSize)
        guard compression != .none else { return bytes }
        let raw = try bytes.withUnsafeBytes {
            try BlockDecompressor.decompress($0, compression, path: file.path, offset: Int64(handle.offset))
        }
        defer { raw.deallocate() }
        return Array(raw)
    }

    /// The block's size with its trailer, after checking it lies inside the file.
    private static func checkBounds(_ handle: BlockHandle, fileSize: UInt64, path: String) throws -> Int {
        let total = handle.size + UInt64(TableFormat.trailerSize)
        guard handle.offset <= fileSize, total <= fileSize - handle.offset else {
            throw SliceError.corruption(
                "block handle points past end of file", path: path, offset: Int64(handle.offset))
        }
        return Int(total)
    }

    static func readBlock(_ file: File, _ handle: BlockHandle, fileSize: UInt64) throws -> Block {
        try Block(readRaw(file, handle, fileSize: fileSize), path: file.path, offset: Int64(handle.offset))
    }

    /// A data block, from the cache when present. `fillCache: false` keeps scans and compactions
    /// from evicting the working set.
    deinit { verifiedBits?.deallocate() }

    /// Reads a block: a view of the mapping (unless `mapped` is false), or a `pread` into a new
    /// buffer. Verified unless `trusted` (mapped blocks that passed before).
    private func readBlock(_ handle: BlockHandle, trusted: Bool = false, mapped: Bool = true) throws -> Block {
        let total = try TableReader.checkBounds(handle, fileSize: fileSize, path: file.path)
        let n = Int(handle.size)
        let offset = Int64(handle.offset)
        if mapped, let mapping {
            let raw = UnsafeRawBufferPointer(
                rebasing: mapping.bytes[Int(handle.offset)..<(Int(handle.offset) + total)])
            // Compressed blocks are always verified (they may be smaller than a slot).
            let compression =
                trusted && raw[n] == 0
                ? Compression.none : try TableReader.verifyTrailer(raw, n, path: file.path, offset: offset)
            let stored = UnsafeRawBufferPointer(rebasing: raw[0..<n])
            guard compression != .none else {
                return try Block(bytes: stored, owner: mapping, path: file.path, offset: offset)
            }
            return try decompressed(stored, compression, offset: offset)
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: total, alignment: 8)
        let compression: Compression
        do {
            guard try file.read(into: buffer, at: offset) == total else {
                throw SliceError.corruption("file is shorter than expected", path: file.path, offset: offset)
            }
            compression = try TableReader.verifyTrailer(
                UnsafeRawBufferPointer(buffer), n, path: file.path, offset: offset)
            if compression == .none {
                // The block owns the buffer from here; if it throws, the catch frees it.
                return try Block(
                    bytes: UnsafeRawBufferPointer(rebasing: buffer[0..<n]), owner: nil, path: file.path,
                    offset: offset)
            }
        } catch {
            buffer.deallocate()
            throw error
        }
        defer { buffer.deallocate() }
        return try decompressed(UnsafeRawBufferPointer(rebasing: buffer[0..<n]), compression, offset: offset)
    }

    /// A block over a new heap buffer holding `stored` decompressed.
    private func decompressed(_ stored: UnsafeRawBufferPointer, _ compression: Compression, offset: Int64) throws
        -> Block
    {
        let raw = try BlockDecompressor.decompress(stored, compression, path: file.path, offset: offset)
        stats?.blocksDecompressed.add(1, ordering: .relaxed)
        do {
            return try Block(bytes: UnsafeRawBufferPointer(raw), owner: nil, path: file.path, offset: offset)
        } catch {
            raw.deallocate()
            throw error
        }
    }

    /// Checks a block's trailer (type byte and masked CRC32C of stored bytes + type) at `n`;
    /// returns the block's compression.
    @discardableResult
    private static func verifyTrailer(_ b: UnsafeRawBufferPointer, _ n: Int, path: String, offset: Int64) throws
        -> Compression
    {
        guard CRC32C.unmask(b.fixed32(at: n + 1)) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<(n + 1)]))
        else {
            throw SliceError.corruption("block checksum mismatch", path: path, offset: offset)
        }
        guard let compression = Compression(tag: b[n]) else {
            throw SliceError(.unsupportedFormat, "unknown block compression \(b[n])", path: path)
        }
        return compression
    }

    /// `fillCache: false` is compaction and `check`, which read whole files once: with `pread`,
    /// verified, never through the mapping, so their pages do not count in the process's
    /// resident memory (an L0 to L1 compaction mapped every input page, +120 MiB of RSS).
    /// `cacheOnly`: a block not in the block cache is not read; `NeedsIO` is thrown instead.
    func dataBlock(_ handle: BlockHandle, fillCache: Bool = true, cacheOnly: Bool = false) throws -> Block {
        let key = BlockCache.Key(file: fileNumber, offset: handle.offset)
        if let cache, let block = cache.get(key) { return block }
        if cacheOnly { throw NeedsIO() }
        if !fillCache { return try insert(readBlock(handle, mapped: false), key, false) }
        guard let verifiedBits else { return try insert(readBlock(handle), key, fillCache) }
        let slot = Int(handle.offset >> 8)
        let word = verifiedBits + slot / UInt.bitWidth
        let bit = UInt(1) << (slot % UInt.bitWidth)
        let trusted = slice_load_relaxed(word) & bit != 0
        let block = try readBlock(handle, trusted: trusted)
        // Only raw blocks (at least 256 bytes: one per slot) are trusted on later reads.
        if !trusted, let mapping, mapping.bytes[Int(handle.offset) + Int(handle.size)] == 0 {
            slice_fetch_or_relaxed(word, bit)
        }
        return insert(block, key, fillCache)
    }

    @inline(__always)
    private func insert(_ block: Block, _ key: BlockCache.Key, _ fillCache: Bool) -> Block {
        stats?.blockReads.add(1, ordering: .relaxed)
        stats?.blockReadBytes.add(block.bytes.count, ordering: .relaxed)
        if fillCache { cache?.insert(key, block) }
        return block
    }

    /// Whether the filter says `userKey` may be here (true when there is no filter).
    func mayContain(userKeyHash: UInt64) -> Bool {
        let maybe: Bool
        if let blockedFilter {
            maybe = blockedFilter.mayContain(hash: userKeyHash)
        } else if let filter {
            maybe = BloomFilter.mayContain(filter, hash: userKeyHash)
        } else {
            return true
        }
        stats?.bloomChecks.add(1, ordering: .relaxed)
        if maybe { return true }
        stats?.bloomUseful.add(1, ordering: .relaxed)
        return false
    }

    /// Starts loading the filter line a `mayContain(userKeyHash:)` will read.
    @inline(__always)
    func prefetchFilter(userKeyHash: UInt64) { blockedFilter?.prefetch(hash: userKeyHash) }

    /// Whether a key starting with `prefix` (which ends in '/') may be in this table: false
    /// only when the filter holds directory prefixes and says this one is absent.
    func mayContainPrefix(hash: UInt64) -> Bool {
        guard properties.filterPrefixes == 1 else { return true }
        return mayContain(userKeyHash: hash)
    }

    /// The newest entry for the lookup key's user key with sequence <= the lookup's.
    /// `body` gets the kind and value bytes (valid only during the call).
    func get<R>(
        _ lookupKey: UnsafeRawBufferPointer, userKeyHash: UInt64, cacheOnly: Bool = false,
        _ body: (ValueKind, UnsafeRawBufferPointer) throws -> R
    ) throws -> R? {
        guard mayContain(userKeyHash: userKeyHash) else { return nil }
        guard let handle = try index.find(lookupKey, path: path, { _, v in BlockHandle.decode(v) }) else { return nil }
        guard let handle else { throw SliceError.corruption("bad index entry", path: path) }
        let block = try dataBlock(handle, cacheOnly: cacheOnly)
        let userKey = UnsafeRawBufferPointer(rebasing: lookupKey[0..<(lookupKey.count - 8)])
        let found: R?? = try block.find(lookupKey, path: path) { k, v in
            guard let parsed = ParsedInternalKey(k) else { throw SliceError.corruption("bad internal key", path: path) }
            guard compareBytes(parsed.userKey, userKey) == 0 else { return nil }
            return try body(parsed.kind, v)
        }
        return found ?? nil
    }

    /// `get` with the value copied out.
    func lookup(_ lookupKey: [UInt8], userKeyHash: UInt64) throws -> Memtable.Lookup {
        try lookupKey.withUnsafeBytes { try lookup($0, userKeyHash: userKeyHash) }
    }

    func lookup(_ lookupKey: UnsafeRawBufferPointer, userKeyHash: UInt64, cacheOnly: Bool = false) throws
        -> Memtable.Lookup
    {
        let r: Memtable.Lookup? = try get(lookupKey, userKeyHash: userKeyHash, cacheOnly: cacheOnly) { kind, v in
            switch kind {
            case .deletion: .deleted
            case .value: .found(Array(v))
            case .blobReference: .blob(Array(v))
            case .indirect: .indirect(Array(v))
            }
        }
        return r ?? .absent
    }

    func makeIterator(fillCache: Bool = true) -> TableIterator { TableIterator(self, fillCache: fillCache) }

    /// Reads and verifies every block (for `check`), handing each blob reference to
    /// `blob` and calling `indirect` for each (well-formed) indirect entry; returns the number
    /// of entries seen.
    func verify(blob: (BlobReference) throws -> Void = { _ in }, indirect: () -> Void = {}) throws -> UInt64 {
        let it = makeIterator(fillCache: false)
        try it.seekToFirst()
        var n: UInt64 = 0
        var previous: [UInt8] = []
        while it.isValid {
            if n > 0 && compareInternalKeys(previous, it.key) >= 0 {
                throw SliceError.corruption("keys out of order", path: path)
            }
            previous = it.key
            guard previous.count >= 8, let kind = ValueKind(rawValue: previous[previous.count - 8]) else {
                throw SliceError.corruption("bad internal key", path: path)
            }
            if kind == .blobReference {
                guard let ref = BlobReference(decoding: it.value) else {
                    throw SliceError.corruption("malformed blob reference", path: path)
                }
                try blob(ref)
            } else if kind == .indirect {
                guard IndirectReference(decoding: it.value) != nil else {
                    throw SliceError.corruption("malformed indirect reference", path: path)
                }
                indirect()
            }
            n += 1
            try it.next()
        }
        guard n == properties.entries else {
            throw SliceError.corruption("table has \(n) entries, properties say \(properties.entries)", path: path)
        }
        return n
    }
}

/// Two-level iterator: the index block picks data blocks, a block iterator walks each.
final class TableIterator: InternalIterator {
    private let table: TableReader
    private let indexIter: BlockIterator
    /// Reused across blocks (`reset`), so its key buffer is allocated once per scan.
    @exclusivity(unchecked) private var data: BlockIterator? {
        didSet { dataRef = data.map { .passUnretained($0) } }
    }
    /// `data` without reference counting, for the per-entry calls (see `MergingIterator.Child`).
    @exclusivity(unchecked) private var dataRef: Unmanaged<BlockIterator>?
    /// Whether `data` is positioned in a block (false: unpositioned or past either end).
    @exclusivity(unchecked) private var hasBlock = false
    private let fillCache: Bool

    init(_ table: TableReader, fillCache: Bool) {
        self.table = table
        self.fillCache = fillCache
        indexIter = table.index.makeIterator(path: table.path)
    }

    var isValid: Bool { hasBlock && dataRef!._withUnsafeGuaranteedRef { $0.isValid } }
    var keyBytes: UnsafeRawBufferPointer { dataRef!._withUnsafeGuaranteedRef { $0.keyBytes } }
    var valueBytes: UnsafeRawBufferPointer { dataRef!._withUnsafeGuaranteedRef { $0.valueBytes } }

    private func loadBlock() throws {
        guard indexIter.isValid else {
            hasBlock = false
            return
        }
        guard let handle = BlockHandle.decode(indexIter.valueBytes) else {
            throw SliceError.corruption("bad index entry", path: table.path)
        }
        let block = try table.dataBlock(handle, fillCache: fillCache)
        if let data { data.reset(block) } else { data = block.makeIterator(path: table.path) }
        hasBlock = true
    }

    private func skipEmptyBlocks() throws {
        while hasBlock && !dataRef!._withUnsafeGuaranteedRef({ $0.isValid }) {
            try indexIter.next()
            try loadBlock()
            if hasBlock { try data!.seekToFirst() }
        }
    }

    func seekToFirst() throws {
        try indexIter.seekToFirst()
        try loadBlock()
        if hasBlock { try data!.seekToFirst() }
        try skipEmptyBlocks()
    }

    func seek(_ target: [UInt8]) throws {
        try indexIter.seek(target)
        try loadBlock()
        if hasBlock { try data!.seek(target) }
        try skipEmptyBlocks()
    }

    func next() throws {
        try dataRef!._withUnsafeGuaranteedRef { try $0.next() }
        try skipEmptyBlocks()
    }

    private func skipEmptyBlocksBackward() throws {
        while hasBlock && !dataRef!._withUnsafeGuaranteedRef({ $0.isValid }) {
            try indexIter.prev()
            try loadBlock()
            if hasBlock { try data!.seekToLast() }
        }
    }

    func seekToLast() throws {
        try indexIter.seekToLast()
        try loadBlock()
        if hasBlock { try data!.seekToLast() }
        try skipEmptyBlocksBackward()
    }

    func prev() throws {
        try dataRef!._withUnsafeGuaranteedRef { try $0.prev() }
        try skipEmptyBlocksBackward()
    }
}
