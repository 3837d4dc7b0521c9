#if canImport(Glibc)
    import Glibc
#endif

/// Writes one value of any size as a stream, without holding it in memory: the first
/// `blobThreshold` bytes are buffered, and past that everything goes straight to a blob file.
/// Nothing is visible until `commit()`, which publishes the value atomically (a value that
/// stayed small is stored inline like any put) under the store's sync policy. `abort()` — or
/// dropping the writer uncommitted — cuts the partial value off its blob file again; if the
/// process dies instead, recovery counts the orphaned bytes as garbage.
///
/// Use one writer from one thread (or task) at a time; the lock only makes misuse safe.
///
/// ```swift
/// let w = try db.valueWriter(for: Array("backups/disk.img".utf8))
/// while let chunk = nextChunk() { try w.write(chunk) }
/// try w.commit()
/// ```
public final class ValueWriter: Sendable {
    private struct State {
        var head: [UInt8] = []
        var writer: BlobFileWriter?
        var start: UInt64 = 0
        var length: UInt64 = 0
        var finished = false
    }

    private let engine: Engine
    private let key: [UInt8]
    private let keyspace: Keyspace
    private let state = Locked(State())

    init(engine: Engine, key: [UInt8], keyspace: Keyspace) throws {
        guard !key.isEmpty, key.count <= Options.maxKeySize else {
            throw SliceError(.invalidArgument, key.isEmpty ? "empty key" : "key exceeds \(Options.maxKeySize) bytes")
        }
        self.engine = engine
        self.key = key
        self.keyspace = keyspace
    }

    deinit { abort() }

    /// Bytes written so far.
    public var count: UInt64 { state.withLock { $0.length } }

    /// The most written bytes a writer can hold that have not been handed to the blob file's
    /// descriptor yet (write-behind: its fill buffer and the buffers queued for writing, see
    /// `BlobFileWriter`); a write error on them is thrown by a later call or by `commit`.
    public static let maxUnwritten = UInt64(
        BlobFileWriter.flushThreshold * (BlobFileWriter.maxInFlight + 1) + BlobFormat.chunkSize)

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try state.withLock { s in
            guard !s.finished else { throw SliceError(.invalidArgument, "value writer already committed or aborted") }
            let newLength = s.length + UInt64(bytes.count)
            guard newLength <= UInt64(engine.options.maxValueSize) else {
                throw SliceError(
                    .invalidArgument, "value exceeds the limit of \(engine.options.maxValueSize) bytes")
            }
            if s.writer == nil && s.head.count + bytes.count < engine.options.blobThreshold {
                s.head.append(contentsOf: bytes)
                s.length = newLength
                return
            }
            if s.writer == nil {
                try engine.freezeIfGarbageFreezePending()
                let w = try engine.acquireBlobWriter()
                s.writer = w
                s.start = w.end
                w.begin()
                do {
                    try s.head.withUnsafeBytes { try w.append($0) }
                } catch {
                    fail(&s)
                    throw error
                }
                s.head = []
            }
            do {
                try s.writer!.append(bytes)
            } catch {
                fail(&s)
                throw error
            }
            s.length = newLength
        }
    }

    public func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

    /// Copies everything readable from `fd` (to end of file) into the value; returns the bytes copied.
    @discardableResult
    public func write(contentsOf fd: Int32) throws -> UInt64 {
        let size = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
        defer { buffer.deallocate() }
        var total: UInt64 = 0
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, size)
            if n < 0 {
                if errno == EINTR { continue }
                throw SliceError.io("read failed", path: nil)
            }
            if n == 0 { return total }
            try write(UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            total += UInt64(n)
        }
    }

    /// Publishes the value, together with the operations in `extra` (one atomic batch: a
    /// file's content and its attributes, say). After a failure nothing is visible and the
    /// writer is spent.
    public func commit(with extra: WriteBatch = WriteBatch(), sync: Bool? = nil) throws {
        let (writer, head, start, length) = try state.withLock { s -> (BlobFileWriter?, [UInt8], UInt64, UInt64) in
            guard !s.finished else { throw SliceError(.invalidArgument, "value writer already committed or aborted") }
            s.finished = true
            let w = s.writer
            s.writer = nil
            return (w, s.head, s.start, s.length)
        }
        guard let w = writer else {
            var batch = WriteBatch()
            batch.put(key, head, keyspace: keyspace)
            batch.append(contentsOf: extra)
            try engine.write(batch, sync: sync)
            return
        }
        var batch = WriteBatch()
        var refSize = 0
        do {
            let ref = try w.finish()
            refSize = ref.encode().count
            if sync ?? (engine.options.syncPolicy == .always) { try w.sync() }
            var engineKey = [keyspace.rawValue]
            engineKey.append(contentsOf: key)
            engineKey.withUnsafeBytes { batch.putBlobReference($0, ref) }
            batch.append(contentsOf: extra)
        } catch {
            engine.abandonBlobWriter(w, rollbackTo: start)
            throw error
        }
        try engine.write(batch, sync: sync, streamed: (w, start))
        engine.counters.blobBytesWritten.add(Int(BlobReference.diskBytes(length)), ordering: .relaxed)
        engine.counters.blobValuesWritten.add(1, ordering: .relaxed)
        engine.counters.userBytesWritten.add(Int(clamping: length) - refSize, ordering: .relaxed)
    }

    /// Drops everything written; nothing becomes visible.
    public func abort() {
        let (writer, start) = state.withLock { s -> (BlobFileWriter?, UInt64) in
            s.finished = true
            s.head = []
            let w = s.writer
            s.writer = nil
            return (w, s.start)
        }
        if let writer { engine.abandonBlobWriter(writer, rollbackTo: start) }
    }

    private func fail(_ s: inout State) {
        s.finished = true
        if let w = s.writer { engine.abandonBlobWriter(w, rollbackTo: s.start) }
        s.writer = nil
    }
}
