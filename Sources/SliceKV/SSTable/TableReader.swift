import Synchronization

/// An open SSTable: footer, index and filter in memory, data blocks read through the block
/// cache with `pread`. Immutable and shared by all readers of the file.
final class TableReader: Sendable {
    let fileNumber: UInt64
    let file: File
    let fileSize: UInt64
    let index: Block
    let filter: [UInt8]?
    let properties: TableProperties
    private let cache: BlockCache?
    private let stats: EngineCounters?

    var path: String { file.path }

    init(path: String, fileNumber: UInt64, cache: BlockCache?, stats: EngineCounters?) throws {
        self.fileNumber = fileNumber
        self.cache = cache
        self.stats = stats
        file = try File.openForReading(path)
        fileSize = UInt64(try file.size())
        guard fileSize >= UInt64(TableFormat.footerSize) else {
            throw SliceError.corruption("file too short to be a table", path: path, offset: 0)
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
            guard f.fixed32(at: 32) == TableFormat.formatVersion else {
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
        var properties = TableProperties()
        try metaIter.seekToFirst()
        while metaIter.isValid {
            guard let handle = BlockHandle.decode(metaIter.value) else {
                throw SliceError.corruption("bad meta block handle", path: path)
            }
            if metaIter.key == TableFormat.filterName {
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
        self.properties = properties
    }

    /// Reads a block and its trailer, verifying the checksum.
    static func readRaw(_ file: File, _ handle: BlockHandle, fileSize: UInt64) throws -> [UInt8] {
        let total = handle.size + UInt64(TableFormat.trailerSize)
        guard handle.offset <= fileSize, total <= fileSize - handle.offset else {
            throw SliceError.corruption(
                "block handle points past end of file", path: file.path, offset: Int64(handle.offset))
        }
        var bytes = try file.read(count: Int(total), at: Int64(handle.offset))
        let n = Int(handle.size)
        let ok = bytes.withUnsafeBytes { b in
            CRC32C.unmask(b.fixed32(at: n + 1)) == CRC32C.checksum(UnsafeRawBufferPointer(rebasing: b[0..<(n + 1)]))
        }
        guard ok else {
            throw SliceError.corruption("block checksum mismatch", path: file.path, offset: Int64(handle.offset))
        }
        guard bytes[n] == 0 else {
            throw SliceError(.unsupportedFormat, "unknown block compression \(bytes[n])", path: file.path)
        }
        bytes.removeLast(TableFormat.trailerSize)
        return bytes
    }

    static func readBlock(_ file: File, _ handle: BlockHandle, fileSize: UInt64) throws -> Block {
        try Block(readRaw(file, handle, fileSize: fileSize), path: file.path, offset: Int64(handle.offset))
    }

    /// A data block, from the cache when present. `fillCache: false` keeps scans and compactions
    /// from evicting the working set.
    func dataBlock(_ handle: BlockHandle, fillCache: Bool = true) throws -> Block {
        let key = BlockCache.Key(file: fileNumber, offset: handle.offset)
        if let cache, let block = cache.get(key) { return block }
        let block = try TableReader.readBlock(file, handle, fileSize: fileSize)
        stats?.blockReads.add(1, ordering: .relaxed)
        stats?.blockReadBytes.add(Int(handle.size), ordering: .relaxed)
        if fillCache { cache?.insert(key, block) }
        return block
    }

    /// Whether the filter says `userKey` may be here (true when there is no filter).
    func mayContain(userKeyHash: UInt64) -> Bool {
        guard let filter else { return true }
        stats?.bloomChecks.add(1, ordering: .relaxed)
        if BloomFilter.mayContain(filter, hash: userKeyHash) { return true }
        stats?.bloomUseful.add(1, ordering: .relaxed)
        return false
    }

    enum Lookup {
        case found(ArraySlice<UInt8>)
        case blob(ArraySlice<UInt8>)
        case deleted
        case absent
    }

    /// The newest version of the lookup key's user key visible at its sequence number.
    func get(_ lookupKey: [UInt8], userKeyHash: UInt64) throws -> Lookup {
        guard mayContain(userKeyHash: userKeyHash) else { return .absent }
        let indexIter = index.makeIterator(path: path)
        try indexIter.seek(lookupKey)
        guard indexIter.isValid else { return .absent }
        guard let handle = BlockHandle.decode(indexIter.value) else {
            throw SliceError.corruption("bad index entry", path: path)
        }
        let it = try dataBlock(handle).makeIterator(path: path)
        try it.seek(lookupKey)
        guard it.isValid else { return .absent }
        return try it.key.withUnsafeBytes { k in
            guard let parsed = ParsedInternalKey(k) else { throw SliceError.corruption("bad internal key", path: path) }
            let same = lookupKey.withUnsafeBytes {
                compareBytes(parsed.userKey, UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 8)])) == 0
            }
            guard same else { return .absent }
            switch parsed.kind {
            case .deletion: return .deleted
            case .value: return .found(it.value)
            case .blobReference: return .blob(it.value)
            }
        }
    }

    func makeIterator(fillCache: Bool = true) -> TableIterator { TableIterator(self, fillCache: fillCache) }

    /// Reads and verifies every block (for `check`), handing each blob reference to
    /// `blob`; returns the number of entries seen.
    func verify(blob: (BlobReference) throws -> Void = { _ in }) throws -> UInt64 {
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
    private var dataIter: BlockIterator?
    private let fillCache: Bool

    init(_ table: TableReader, fillCache: Bool) {
        self.table = table
        self.fillCache = fillCache
        indexIter = table.index.makeIterator(path: table.path)
    }

    var isValid: Bool { dataIter?.isValid ?? false }
    var key: [UInt8] { dataIter!.key }
    var value: ArraySlice<UInt8> { dataIter!.value }

    private func loadBlock() throws {
        guard indexIter.isValid else {
            dataIter = nil
            return
        }
        guard let handle = BlockHandle.decode(indexIter.value) else {
            throw SliceError.corruption("bad index entry", path: table.path)
        }
        dataIter = try table.dataBlock(handle, fillCache: fillCache).makeIterator(path: table.path)
    }

    private func skipEmptyBlocks() throws {
        while let d = dataIter, !d.isValid {
            try indexIter.next()
            try loadBlock()
            try dataIter?.seekToFirst()
        }
    }

    func seekToFirst() throws {
        try indexIter.seekToFirst()
        try loadBlock()
        try dataIter?.seekToFirst()
        try skipEmptyBlocks()
    }

    func seek(_ target: [UInt8]) throws {
        try indexIter.seek(target)
        try loadBlock()
        try dataIter?.seek(target)
        try skipEmptyBlocks()
    }

    func next() throws {
        try dataIter!.next()
        try skipEmptyBlocks()
    }

    private func skipEmptyBlocksBackward() throws {
        while let d = dataIter, !d.isValid {
            try indexIter.prev()
            try loadBlock()
            try dataIter?.seekToLast()
        }
    }

    func seekToLast() throws {
        try indexIter.seekToLast()
        try loadBlock()
        try dataIter?.seekToLast()
        try skipEmptyBlocksBackward()
    }

    func prev() throws {
        try dataIter!.prev()
        try skipEmptyBlocksBackward()
    }
}
