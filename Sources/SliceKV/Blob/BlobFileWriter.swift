import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Appends records (values) to one blob file in `BlobFormat`.
///
/// Ownership: a writer is lent to one put at a time by `BlobStore` (acquire/release), so the
/// record state and the fill buffer need no lock. Other threads touch only `unsynced` and the
/// descriptor (`BlobStore.syncAll` from flush and `sync()`), both thread-safe.
///
/// Write-behind (why: a stream arriving through FUSE is strictly sequential, one request at a
/// time, so a `pwrite` in the request path would add its full cost to every request; measured
/// on this machine a 1 MiB page-cache write costs ~1.3 ms, most of a request's time): a full
/// 1 MiB buffer is handed to this writer's serial I/O queue and the caller goes on filling the
/// next. At most `maxInFlight` buffers are pending; `finish`, `rollback` and `deinit` drain the
/// queue first, so a record is on its way to the disk (in the page cache) before its reference
/// is returned. An I/O error is kept and thrown by the next call.
final class BlobFileWriter: @unchecked Sendable {
    let number: UInt64
    let file: File
    /// Keeps the file alive (undeleted) while it is being written.
    let blobFile: BlobFile
    /// File offset just past the last byte appended, buffered bytes included.
    private(set) var end: UInt64
    /// Bytes up to here have been handed to the I/O queue.
    private var flushedEnd: UInt64
    private var buffer: RawBuffer
    /// Set when data reached the OS but not the disk.
    let unsynced = SyncFlag()

    private let io = DispatchQueue(label: "slice.blob-writer")
    private let slots = DispatchSemaphore(value: BlobFileWriter.maxInFlight)
    private let spares = Locked<[RawBuffer]>([])
    private let ioError = Locked<SliceError?>(nil)

    private var recordStart: UInt64 = 0
    private var recordLength: UInt64 = 0
    private var chunkFill = 0
    private var chunkIndex: UInt32 = 0
    private var chunkCRC: UInt32 = 0
    private var valueCRC: UInt32 = 0

    /// Buffered bytes are written out in pieces of this size: large sequential writes, bounded memory.
    static let flushThreshold = 1 << 20
    static let maxInFlight = 2
    private static let bufferCapacity = flushThreshold + BlobFormat.chunkSize + 64

    /// Creates the file and writes its header.
    init(path: String, number: UInt64, blobFile: BlobFile, layer: any FileLayer) throws {
        self.number = number
        self.blobFile = blobFile
        file = try layer.open(path, flags: O_RDWR | O_CREAT | O_TRUNC, mode: File.defaultMode)
        try file.append(BlobFormat.header)
        end = UInt64(BlobFormat.headerSize)
        flushedEnd = end
        buffer = RawBuffer(capacity: BlobFileWriter.bufferCapacity)
        spares.withLock { s in
            for _ in 0..<BlobFileWriter.maxInFlight { s.append(RawBuffer(capacity: BlobFileWriter.bufferCapacity)) }
        }
    }

    deinit {
        io.sync {}
        buffer.deallocate()
        spares.withLock { for b in $0 { b.deallocate() } }
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
            buffer.append(piece)
            chunkCRC = CRC32C.checksum(piece, extending: chunkCRC)
            chunkFill += n
            recordLength += UInt64(n)
            end += UInt64(n)
            p += n
            if chunkFill == BlobFormat.chunkSize { closeChunk() }
            if buffer.count >= BlobFileWriter.flushThreshold { try flushBuffer() }
        }
    }

    private func closeChunk() {
        let stored = CRC32C.mask(BlobFormat.finishChunk(chunkCRC, index: chunkIndex))
        withUnsafeBytes(of: stored.littleEndian) { crc in
            buffer.append(crc)
            valueCRC = CRC32C.checksum(crc, extending: valueCRC)
        }
        end += UInt64(BlobFormat.chunkTrailerSize)
        chunkIndex += 1
        chunkFill = 0
        chunkCRC = 0
    }

    /// Completes the record and hands every byte of it to the OS; returns its reference.
    ///
    /// The record's last piece is written on the calling thread, after the queue has drained:
    /// the caller waits for it either way, and handing a small value (a 4 KiB file) to the
    /// queue cost a thread wake-up and a futex wait in each put (`perf`: ~15% of a mount's
    /// create with `blob_kb=4`) to save nothing.
    func finish() throws -> BlobReference {
        let ref = endRecord()
        try writeOut()
        return ref
    }

    /// Completes the record without writing it out: its last piece stays in the fill buffer.
    /// Why: a batch of many large values (a file's chunks, 64 KiB each) ends each record with
    /// this and calls `writeOut()` once, so the pieces travel in 1 MiB writes behind the
    /// caller instead of one `pwrite` per value on its thread. The reference must not be
    /// published before `writeOut()` has returned.
    func endRecord() -> BlobReference {
        if chunkFill > 0 { closeChunk() }
        return BlobReference(fileNumber: number, offset: recordStart, length: recordLength, checksum: valueCRC)
    }

    /// Hands every completed record to the OS: waits for the queue, then writes what is left
    /// in the fill buffer on the calling thread.
    func writeOut() throws {
        try drain()
        if buffer.count > 0 {
            do {
                try file.write(buffer.bytes, at: Int64(flushedEnd))
            } catch {
                try? file.truncate(to: Int64(flushedEnd))  // a short write leaves nothing behind
                throw error
            }
            unsynced.value.store(true, ordering: .releasing)
            flushedEnd += UInt64(buffer.count)
            buffer.count = 0
        }
    }

    /// Drops every record from `offset` on (records in progress or finished but never
    /// committed): the file is cut back, so an abandoned put leaves no garbage.
    func rollback(to offset: UInt64) throws {
        io.sync {}
        buffer.count = 0
        if flushedEnd > offset {
            try file.truncate(to: Int64(offset))
            flushedEnd = offset
        }
        end = offset
        recordLength = 0
        chunkFill = 0
        try throwIOError()
    }

    /// Waits until every queued buffer is written; throws a write error if one happened.
    private func drain() throws {
        io.sync {}
        try throwIOError()
    }

    private func throwIOError() throws {
        if let e = ioError.withLock({ $0 }) { throw e }
    }

    /// Hands the filled buffer to the I/O queue and continues with a spare one.
    private func flushBuffer() throws {
        guard buffer.count > 0 else { return }
        try throwIOError()
        slots.wait()
        let full = buffer
        let offset = flushedEnd
        flushedEnd += UInt64(full.count)
        buffer = spares.withLock { $0.popLast() }!
        buffer.count = 0
        let job = WriteJob(file: file, data: full, offset: offset)
        io.async { [spares, ioError, slots, unsynced] in
            do {
                try job.file.write(job.data.bytes, at: Int64(job.offset))
                unsynced.value.store(true, ordering: .releasing)
            } catch {
                ioError.withLock { e in
                    if e == nil { e = (error as? SliceError) ?? SliceError(.ioError, "\(error)") }
                }
            }
            spares.withLock { $0.append(job.data) }
            slots.signal()
        }
    }

    /// Makes the data handed to the OS durable. Safe from any thread.
    func sync() throws {
        guard unsynced.value.exchange(false, ordering: .acquiringAndReleasing) else { return }
        do {
            try file.sync()
        } catch {
            unsynced.value.store(true, ordering: .releasing)
            throw error
        }
    }
}

/// An atomic flag that a queued job can capture.
final class SyncFlag: Sendable {
    let value = Atomic<Bool>(true)
}

/// A fixed-capacity byte buffer (why: appending with `memcpy` and handing it between threads
/// without copy-on-write or reallocation; `[UInt8]` would do neither).
private struct RawBuffer: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let capacity: Int
    var count = 0

    init(capacity: Int) {
        base = .allocate(byteCount: capacity, alignment: 64)
        self.capacity = capacity
    }

    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    mutating func append(_ data: UnsafeRawBufferPointer) {
        precondition(count + data.count <= capacity, "blob write buffer overflow")
        (base + count).copyMemory(from: data.baseAddress!, byteCount: data.count)
        count += data.count
    }

    func deallocate() { base.deallocate() }
}

private struct WriteJob: @unchecked Sendable {
    let file: File
    let data: RawBuffer
    let offset: UInt64
}
