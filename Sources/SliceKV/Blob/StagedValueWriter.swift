/// Large values written to a blob file ahead of the batch that publishes them: each `stage`
/// appends one value's record and returns a `StagedValue`, which a `WriteBatch` puts under a
/// key; `commit` writes that batch atomically. Nothing is visible before the commit, and a
/// commit that fails (or `abort`, or dropping the writer) cuts the staged records off the
/// blob file again; after a crash, recovery counts them as garbage.
///
/// Why: a file streamed through a mount arrives 1 MiB at a time and is stored in 64 KiB
/// chunks. Staging copies each chunk once, from the request buffer into the blob file's
/// write-behind buffer, where buffering it and putting it in a batch copied it three times
/// and wrote it on the request's thread.
///
/// A writer holds one blob file (and its buffers, about 3 MiB) from the first `stage` to the
/// commit, so keep few of them alive at once. Use one from one thread at a time; the lock
/// only makes misuse safe.
public final class StagedValueWriter: Sendable {
    private struct State {
        var writer: BlobFileWriter?
        var start: UInt64 = 0
        var bytes: UInt64 = 0
        var values = 0
    }

    private let engine: Engine
    private let state = Locked(State())

    init(engine: Engine) { self.engine = engine }

    deinit { abort() }

    /// Bytes staged since the last commit.
    public var stagedBytes: UInt64 { state.withLock { $0.bytes } }

    /// Appends one value to the blob file. Values shorter than the store's `blobThreshold`
    /// are refused (put them in the batch as bytes). After an error the staged values are
    /// gone (`abort`) and the error is thrown again by `commit`.
    public func stage(_ bytes: UnsafeRawBufferPointer) throws -> StagedValue {
        guard bytes.count >= engine.options.blobThreshold else {
            throw SliceError(.invalidArgument, "a staged value must have at least blobThreshold bytes")
        }
        guard UInt64(bytes.count) <= UInt64(engine.options.maxValueSize) else {
            throw SliceError(.invalidArgument, "value exceeds the limit of \(engine.options.maxValueSize) bytes")
        }
        return try state.withLock { s in
            if s.writer == nil {
                try engine.freezeIfGarbageFreezePending()
                let w = try engine.acquireBlobWriter()
                s.writer = w
                s.start = w.end
            }
            let w = s.writer!
            w.begin()
            do {
                try w.append(bytes)
            } catch {
                drop(&s)
                throw error
            }
            s.bytes += UInt64(bytes.count)
            s.values += 1
            return StagedValue(reference: w.endRecord())
        }
    }

    /// Writes `batch` (which may put the values staged since the last commit, and anything
    /// else) as one atomic write under the store's sync policy, `sync` overriding it. Values in
    /// the batch of at least `blobThreshold` bytes go to the same blob file. Afterwards the
    /// writer is empty and can stage again; after a failure nothing of the batch or the staged
    /// values is visible.
    public func commit(_ batch: WriteBatch, sync: Bool? = nil) throws {
        let (writer, start, values, bytes) = state.withLock { s -> (BlobFileWriter?, UInt64, Int, UInt64) in
            defer { s = State() }
            return (s.writer, s.start, s.values, s.bytes)
        }
        guard let w = writer else {
            try engine.write(batch, sync: sync)
            return
        }
        let out: WriteBatch
        var separatedValues = 0
        do {
            out = try separated(batch, into: w, count: &separatedValues)
            try w.writeOut()
            if sync ?? (engine.options.syncPolicy == .always) { try w.sync() }
        } catch {
            engine.abandonBlobWriter(w, rollbackTo: start)
            throw error
        }
        try engine.write(out, sync: sync, streamed: (w, start))
        engine.counters.blobBytesWritten.add(Int(clamping: w.end - start), ordering: .relaxed)
        engine.counters.blobValuesWritten.add(values + separatedValues, ordering: .relaxed)
        engine.counters.blobValuesStaged.add(values, ordering: .relaxed)
        engine.counters.userBytesWritten.add(Int(clamping: bytes), ordering: .relaxed)
    }

    /// Drops every value staged since the last commit.
    public func abort() {
        state.withLock { drop(&$0) }
    }

    private func drop(_ s: inout State) {
        if let w = s.writer { engine.abandonBlobWriter(w, rollbackTo: s.start) }
        s = State()
    }

    /// `batch` with its large values appended to `w` and put as references.
    private func separated(_ batch: WriteBatch, into w: BlobFileWriter, count: inout Int) throws -> WriteBatch {
        var large = false
        try batch.forEach { kind, _, value in
            if kind == .value && value.count >= engine.options.blobThreshold { large = true }
        }
        guard large else { return batch }
        var out = WriteBatch()
        try batch.forEach { kind, key, value in
            guard kind == .value && value.count >= engine.options.blobThreshold else {
                out.append(kind, key, value)
                return
            }
            w.begin()
            try w.append(value)
            out.putBlobReference(key, w.endRecord())
            count += 1
        }
        out.freesSpace = batch.freesSpace
        out.heldBlobFiles = batch.heldBlobFiles
        return out
    }
}

/// A value staged by a `StagedValueWriter`, to be put in the batch its `commit` writes.
public struct StagedValue: Sendable, Equatable {
    let reference: BlobReference

    /// The value's size in bytes.
    public var count: UInt64 { reference.length }
}
