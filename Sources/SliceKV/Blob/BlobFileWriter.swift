import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Appends records (values) to one blob file in `BlobFormat`.
///
/// Ownership: a writer is lent to one put at a time by `BlobStore` (acquire/release), so the
/// record state and buffer need no lock. Only `needsSync` and the descriptor are touched by
/// other threads (`BlobStore.syncAll` from flush and `sync()`), and both are thread-safe.
final class BlobFileWriter: @unchecked Sendable {
    let number: UInt64
    let file: File
    /// Keeps the file alive (undeleted) while it is being written.
    let blobFile: BlobFile
    /// File offset just past the last byte appended, buffered bytes included.
    private(set) var end: UInt64
    /// Bytes up to here have been handed to the OS.
    private var flushedEnd: UInt64
    private var buffer: [UInt8] = []
    /// Set when data reached the OS but not the disk.
    let needsSync = Atomic<Bool>(true)

    private var recordStart: UInt64 = 0
    private var recordLength: UInt64 = 0
    private var chunkFill = 0
    private var chunkIndex: UInt32 = 0
    private var chunkCRC: UInt32 = 0
    private var valueCRC: UInt32 = 0

    /// Buffered bytes are written out in pieces of this size: large sequential writes, bounded memory.
    static let flushThreshold = 1 << 20

    /// Creates the file and writes its header.
    init(path: String, number: UInt64, blobFile: BlobFile) throws {
        self.number = number
        self.blobFile = blobFile
        file = try File.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
        try file.append(BlobFormat.header)
        end = UInt64(BlobFormat.headerSize)
        flushedEnd = end
        buffer.reserveCapacity(BlobWriterCapacity.bytes)
    }

    /// Bytes of records in the file (everything after the header).
    var recordBytes: UInt64 { end - UInt64(BlobFormat.headerSize) }

    func begin() {
        recordStart = end
        recordLength = 0
        chunkFill = 0
        chunkIndex = 0
        chunkCRC = 0
        valueCRC = 0
    }

    func append(_ data: UnsafeRawBufferPointer) throws {
        var p = 0
        while p < data.count {
            let n = min(BlobFormat.chunkSize - chunkFill, data.count - p)
            let piece = UnsafeRawBufferPointer(rebasing: data[p..<(p + n)])
            buffer.append(contentsOf: piece)
            chunkCRC = CRC32C.checksum(piece, extending: chunkCRC)
            valueCRC = CRC32C.checksum(piece, extending: valueCRC)
            chunkFill += n
            recordLength += UInt64(n)
            end += UInt64(n)
            p += n
            if chunkFill == BlobFormat.chunkSize { closeChunk() }
            if buffer.count >= BlobFileWriter.flushThreshold { try flushBuffer() }
        }
    }

    private func closeChunk() {
        buffer.appendFixed32(CRC32C.mask(BlobFormat.finishChunk(chunkCRC, index: chunkIndex)))
        end += UInt64(BlobFormat.chunkTrailerSize)
        chunkIndex += 1
        chunkFill = 0
        chunkCRC = 0
    }

    /// Completes the record and hands every byte of it to the OS; returns its reference.
    func finish() throws -> BlobReference {
        if chunkFill > 0 { closeChunk() }
        try flushBuffer()
        return BlobReference(fileNumber: number, offset: recordStart, length: recordLength, checksum: valueCRC)
    }

    /// Drops every record from `offset` on (records in progress or finished but never
    /// committed): the file is cut back, so an abandoned put leaves no garbage.
    func rollback(to offset: UInt64) throws {
        buffer.removeAll(keepingCapacity: true)
        if flushedEnd > offset {
            try file.truncate(to: Int64(offset))
            flushedEnd = offset
        }
        end = offset
        recordLength = 0
        chunkFill = 0
    }

    private func flushBuffer() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { try file.write($0, at: Int64(flushedEnd)) }
        flushedEnd += UInt64(buffer.count)
        buffer.removeAll(keepingCapacity: true)
        needsSync.store(true, ordering: .releasing)
    }

    /// Makes the data handed to the OS durable. Safe from any thread.
    func sync() throws {
        guard needsSync.exchange(false, ordering: .acquiringAndReleasing) else { return }
        do {
            try file.sync()
        } catch {
            needsSync.store(true, ordering: .releasing)
            throw error
        }
    }
}

private enum BlobWriterCapacity {
    static let bytes = BlobFileWriter.flushThreshold + BlobFormat.chunkSize + 64
}
