import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The bytes of regular files written through the mount: a chunked value per inode in
/// `FSKeyspace.chunks` (format: `ChunkedValue` in SliceKV), which the path's indirect entry in
/// `.user` makes readable as one value through the key-value API.
///
/// Chunks are 64 KiB: an append or a random write rewrites at most the chunks it touches
/// (64 KiB each; measured trade-off in BENCHMARKS.md), a truncate deletes whole chunks and
/// trims one, holes are absent chunks and cost nothing, and a read reads only the chunks of
/// its range. Each chunk is one value, so with the mount's 4 KiB blob threshold it lives in a
/// blob file and compactions move 20-byte references, not file bytes.
///
/// Stateless: callers hold the inode's stripe (`InodeLocks`) while they change a file.
struct FileContent {
    static let chunkShift = 16
    static let chunkSize = 1 << chunkShift
    /// The largest file size, as ext4 with 4 KiB blocks: 16 TiB - 4 KiB. Larger sizes and
    /// writes ending past it answer EFBIG, as there.
    static let maxFileSize: UInt64 = (1 << 44) - 4096

    let store: any FileStore

    static func chunkKey(_ ino: InodeNumber, _ index: UInt64) -> [UInt8] {
        ChunkedValue.chunkKey(FSKeyspace.chunkPrefix(ino), index)
    }

    static func headerKey(_ ino: InodeNumber) -> [UInt8] { ChunkedValue.headerKey(FSKeyspace.chunkPrefix(ino)) }

    /// The header of an empty file of `size` bytes.
    static func header(size: UInt64) -> [UInt8] {
        ChunkedValue.Header(length: size, chunkShift: UInt8(chunkShift)).encode()
    }

    /// Adds what makes `ino` a file of `size` bytes to `batch` (the header only: chunks are
    /// written by `put`).
    static func setSize(_ ino: InodeNumber, _ size: UInt64, in batch: inout WriteBatch) {
        batch.put(headerKey(ino), header(size: size), keyspace: FSKeyspace.chunks)
    }

    /// The file's size; throws EIO when the header is missing or unreadable.
    func size(_ ino: InodeNumber) throws -> UInt64 {
        guard let bytes = try store.get(FileContent.headerKey(ino), keyspace: FSKeyspace.chunks) else {
            throw Vanished()
        }
        guard let header = ChunkedValue.Header(decoding: bytes) else { throw FSError(EIO) }
        guard Int(header.chunkShift) == FileContent.chunkShift else { throw FSError(EIO) }
        return header.length
    }

    /// A chunk's stored bytes (nil: a hole).
    func chunk(_ ino: InodeNumber, _ index: UInt64) throws -> [UInt8]? {
        try store.get(FileContent.chunkKey(ino, index), keyspace: FSKeyspace.chunks)
    }

    /// Length of a chunk's stored bytes without reading them (0: a hole).
    func storedLength(_ ino: InodeNumber, _ index: UInt64) throws -> Int {
        Int(try store.valueSize(FileContent.chunkKey(ino, index), keyspace: FSKeyspace.chunks) ?? 0)
    }

    /// Reads `[offset, offset + buffer.count)` clipped to `size`; holes read as zeros.
    /// `dirty` supplies chunks not yet committed (whole chunk buffers).
    func read(
        _ ino: InodeNumber, size: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer,
        dirty: (UInt64) -> [UInt8]? = { _ in nil }
    ) throws -> Int {
        guard offset < size, buffer.count > 0 else { return 0 }
        let n = Int(min(UInt64(buffer.count), size - offset))
        var done = 0
        while done < n {
            let position = offset + UInt64(done)
            let index = position >> UInt64(FileContent.chunkShift)
            let within = Int(position & UInt64(FileContent.chunkSize - 1))
            let take = min(n - done, FileContent.chunkSize - within)
            let target = UnsafeMutableRawBufferPointer(rebasing: buffer[done..<(done + take)])
            if let chunk = dirty(index) {
                chunk.withUnsafeBytes { c in
                    let available = max(0, min(take, c.count - within))
                    if available > 0 {
                        target.baseAddress!.copyMemory(from: c.baseAddress! + within, byteCount: available)
                    }
                    if available < take { memset(target.baseAddress! + available, 0, take - available) }
                }
            } else {
                let got =
                    try store.read(
                        FileContent.chunkKey(ino, index), keyspace: FSKeyspace.chunks, offset: UInt64(within),
                        into: target) ?? 0
                if got < take { memset(target.baseAddress! + got, 0, take - got) }
            }
            done += take
        }
        return n
    }

    /// Deletes every chunk at or after `index` (a truncate's tail), `limit` keys per batch
    /// (default: the store's `maxBatchOperations`) written through `flush`; returns the stored
    /// bytes removed.
    /// `counting: false` skips reading each chunk's size (the result is then 0).
    func deleteChunks(
        _ ino: InodeNumber, from index: UInt64, in batch: inout WriteBatch, flushEvery limit: Int? = nil,
        counting: Bool = true, flush: (inout WriteBatch) throws -> Void
    ) throws -> UInt64 {
        let limit = limit ?? store.maxBatchOperations
        let prefix = FSKeyspace.chunkPrefix(ino)
        let start = FileContent.chunkKey(ino, index)
        let end = KeyRange.prefix(prefix).end
        var keys: [[UInt8]] = []
        var removed: UInt64 = 0
        try store.scan(FSKeyspace.chunks, from: start, to: end, values: false) { key, _ in
            keys.append(Array(key))
            return true
        }
        for key in keys {
            if counting { removed += try store.valueSize(key, keyspace: FSKeyspace.chunks) ?? 0 }
            batch.delete(key, keyspace: FSKeyspace.chunks)
            if batch.count >= limit { try flush(&batch) }
        }
        return removed
    }

    /// The first offset at or after `offset` that holds data (`SEEK_DATA`) or is in a hole
    /// (`SEEK_HOLE`; the end of the file counts as a hole), at chunk granularity: a stored
    /// chunk is data throughout. nil: no such offset (ENXIO). `dirty`: chunks not yet committed.
    func seek(_ ino: InodeNumber, size: UInt64, offset: UInt64, data: Bool, dirty: Set<UInt64>) throws -> UInt64? {
        guard offset < size else { return nil }
        let shift = UInt64(FileContent.chunkShift)
        let first = offset >> shift
        let last = (size - 1) >> shift
        var stored = dirty.filter { $0 >= first && $0 <= last }
        try store.scan(
            FSKeyspace.chunks, from: FileContent.chunkKey(ino, first), to: FileContent.chunkKey(ino, last + 1),
            values: false
        ) { key, _ in
            stored.insert(key.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            return true
        }
        if data {
            guard let index = stored.min() else { return nil }
            return max(offset, index << shift)
        }
        var index = first
        while index <= last && stored.contains(index) { index += 1 }
        return index > last ? size : max(offset, index << shift)
    }
}
