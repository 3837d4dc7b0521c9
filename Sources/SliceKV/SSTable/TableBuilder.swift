/// Writes one SSTable (format in `TableFormat`). Entries must arrive in internal-key order.
/// Not thread-safe: one builder per flush or compaction output.
final class TableBuilder {
    let path: String
    private let file: File
    private let blockSize: Int
    private let bloomBitsPerKey: Int
    private var dataBlock: BlockBuilder
    private var indexBlock = BlockBuilder(restartInterval: 1)
    private var out: [UInt8] = []
    private var offset: UInt64 = 0
    private var keyHashes: [UInt64] = []
    private var lastUserKeyHash: UInt64?
    private(set) var properties = TableProperties(blobFiles: [:])
    private(set) var smallest: [UInt8] = []
    private(set) var largest: [UInt8] = []
    private var finished = false
    private let compressor: BlockCompressor
    /// Writes the classic `BloomFilter` instead of the blocked one: what tables written
    /// before blocked filters carry (tests use it to check those still read).
    var writesClassicFilter = false

    /// `compression` applies to data blocks (meta blocks are read once per open and stay raw).
    init(path: String, options: Options, compression: Compression = .none) throws {
        self.path = path
        self.compressor = BlockCompressor(compression, zstdLevel: options.zstdLevel)
        self.file = try options.fileLayer.create(path)
        self.blockSize = options.blockSize
        self.bloomBitsPerKey = options.bloomBitsPerKey
        self.dataBlock = BlockBuilder(restartInterval: options.blockRestartInterval)
        out.reserveCapacity(1 << 20)
    }

    var entries: UInt64 { properties.entries }

    /// Bytes written so far plus the open block: the size the file would have.
    var estimatedFileSize: UInt64 { offset + UInt64(out.count + dataBlock.estimatedSize) }

    func add(_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws {
        if properties.entries == 0 { smallest = Array(key) }
        guard let parsed = ParsedInternalKey(key) else {
            throw SliceError(.invalidArgument, "internal key without a trailer", path: path)
        }
        if bloomBitsPerKey > 0 {
            let h = BloomFilter.hash(parsed.userKey)
            if h != lastUserKeyHash {
                keyHashes.append(h)
                lastUserKeyHash = h
                addPrefixHashes(parsed.userKey)
            }
        }
        if properties.entries > 0
            && largest.withUnsafeBytes({
                compareBytes(UnsafeRawBufferPointer(rebasing: $0[0..<($0.count - 8)]), parsed.userKey) == 0
            })
        {
            properties.olderVersions += 1
        }
        properties.entries += 1
        if parsed.kind == .deletion { properties.deletions += 1 }
        if parsed.kind == .blobReference {
            guard let ref = BlobReference(decoding: value) else {
                throw SliceError(.corruption, "malformed blob reference added to a table", path: path)
            }
            properties.addBlobReference(file: ref.fileNumber, bytes: ref.diskBytes)
        }
        properties.rawKeyBytes += UInt64(key.count)
        properties.rawValueBytes += UInt64(value.count)
        properties.smallestSequence = min(properties.smallestSequence, parsed.sequence)
        properties.largestSequence = max(properties.largestSequence, parsed.sequence)
        dataBlock.add(key, value)
        if dataBlock.estimatedSize >= blockSize { try flushDataBlock() }
        largest.removeAll(keepingCapacity: true)
        largest.append(contentsOf: key)
    }

    /// Adds the hash of every prefix of `userKey` that ends in '/' and that the previous key
    /// (sorted just before it) does not share: each directory prefix is added once per run.
    private func addPrefixHashes(_ userKey: UnsafeRawBufferPointer) {
        let shared: Int = largest.withUnsafeBytes { last in
            guard properties.entries > 0 else { return 0 }
            let previous = UnsafeRawBufferPointer(rebasing: last[0..<(last.count - 8)])
            let n = min(previous.count, userKey.count)
            var i = 0
            while i < n && previous[i] == userKey[i] { i += 1 }
            return i
        }
        var i = shared
        while i < userKey.count {
            if userKey[i] == 0x2f {
                keyHashes.append(BloomFilter.hash(UnsafeRawBufferPointer(rebasing: userKey[0...i])))
            }
            i += 1
        }
    }

    func add(_ key: [UInt8], _ value: ArraySlice<UInt8>) throws {
        try key.withUnsafeBytes { k in try value.withUnsafeBytes { v in try add(k, v) } }
    }

    private func flushDataBlock() throws {
        guard !dataBlock.isEmpty else { return }
        let last = dataBlock.lastKey
        let contents = dataBlock.finish()
        let handle = try compressor.withStored(contents) { stored, compression in
            properties.dataRawBytes += UInt64(contents.count)
            properties.dataStoredBytes += UInt64(stored.count)
            if compression != .none { properties.compressedBlocks += 1 }
            return try writeBlock(stored, compression)
        }
        indexBlock.add(last, handle.encoded)
        properties.dataBlocks += 1
    }

    private func writeBlock(_ contents: [UInt8]) throws -> BlockHandle {
        try contents.withUnsafeBytes { try writeBlock($0, .none) }
    }

    /// Buffers a block's stored bytes and its trailer; the buffer is written in 1 MiB pieces.
    private func writeBlock(_ stored: UnsafeRawBufferPointer, _ compression: Compression) throws -> BlockHandle {
        let handle = BlockHandle(offset: offset + UInt64(out.count), size: UInt64(stored.count))
        out.append(contentsOf: stored)
        let tag = compression.tag
        out.append(tag)
        let crc = CRC32C.checksum(stored, extending: 0)
        out.appendFixed32(CRC32C.mask(withUnsafeBytes(of: tag) { CRC32C.checksum($0, extending: crc) }))
        if out.count >= 1 << 20 { try drain() }
        return handle
    }

    private func drain() throws {
        try file.append(out)
        offset += UInt64(out.count)
        out.removeAll(keepingCapacity: true)
    }

    /// Writes the meta blocks and footer, syncs the file, and returns its size.
    func finish() throws -> UInt64 {
        precondition(!finished)
        finished = true
        try flushDataBlock()
        var meta = BlockBuilder(restartInterval: 1)
        if bloomBitsPerKey > 0 {
            properties.filterPrefixes = 1
            if writesClassicFilter {
                let filterHandle = try writeBlock(BloomFilter.build(hashes: keyHashes, bitsPerKey: bloomBitsPerKey))
                meta.add(TableFormat.filterName, filterHandle.encoded)
            } else {
                let filterHandle = try writeBlock(
                    BlockedBloomFilter.build(hashes: keyHashes, bitsPerKey: bloomBitsPerKey))
                meta.add(TableFormat.blockedFilterName, filterHandle.encoded)
            }
        }
        var props = BlockBuilder(restartInterval: 1)
        for (name, value) in properties.namedValues {
            var v: [UInt8] = []
            v.appendVarint(value)
            props.add(Array(name.utf8), v)
        }
        let propsHandle = try writeBlock(props.finish())
        meta.add(TableFormat.propertiesName, propsHandle.encoded)
        let metaHandle = try writeBlock(meta.finish())
        let indexHandle = try writeBlock(indexBlock.finish())
        var footer: [UInt8] = []
        footer.appendFixed64(metaHandle.offset)
        footer.appendFixed64(metaHandle.size)
        footer.appendFixed64(indexHandle.offset)
        footer.appendFixed64(indexHandle.size)
        footer.appendFixed32(TableFormat.formatVersion)
        footer.appendFixed32(CRC32C.mask(CRC32C.checksum(footer)))
        footer.appendFixed64(TableFormat.magic)
        out.append(contentsOf: footer)
        try drain()
        try file.sync()
        return offset
    }

    /// Gives up on a partial table and deletes its file.
    func abandon() {
        finished = true
        try? file.layer.remove(path)
    }
}
