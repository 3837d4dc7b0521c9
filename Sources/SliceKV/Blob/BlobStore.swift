import Synchronization

/// The engine's blob files at run time: a pool of writers for new values, the lifetime objects
/// of every file in use, and reads (whole or ranged) with checksum verification.
///
/// Writers: `acquireWriter` lends a writer to one put (never shared while lent), creating a
/// new file when none is idle; `releaseWriter` returns it, or hands it back for sealing once
/// it has reached `Options.blobFileSize` or holds enough counted garbage to be worth sealing
/// early (`BlobFileAccount.worthSealingEarly`, from the accounts the engine passes to
/// `noteAccounts` after each edit). Concurrent large puts therefore write to different
/// files, and a slow stream (a file being copied into the mount) never blocks another.
/// Values garbage collection moves go to writers of their own (`forRelocation`). Why: mixed
/// into the files new values go to, they would keep each such file alive after its own
/// values are overwritten (so a file written while one memtable was active can no longer die
/// whole once that memtable is flushed), and the job's sync would wait for the new values'
/// bytes as well.
///
/// Locking: `state` is a leaf lock (nothing else is taken while holding it).
final class BlobStore: @unchecked Sendable {
    let directory: String
    let options: Options
    let readers: BlobReaderCache
    let deleter: FileDeleter
    let counters: EngineCounters

    private struct State {
        var idle: [BlobFileWriter] = []
        /// Every writer not yet sealed (idle or lent), for `syncAll` and `close`.
        var unsealed: [UInt64: BlobFileWriter] = [:]
        var registry: [UInt64: WeakBlobFile] = [:]
        var pruneAt = 64
        /// The current version's accounts of the files in `unsealed` (`noteAccounts`).
        var accounts: [UInt64: BlobFileAccount] = [:]
        /// Files to seal at the next chance (`requestSeal`).
        var sealRequested: Set<UInt64> = []
        /// Writers (idle or lent) that take relocated values only.
        var relocation: Set<UInt64> = []

        /// Drops a writer that will take no more values (sealed, or given up).
        mutating func forget(_ number: UInt64) {
            unsealed[number] = nil
            accounts[number] = nil
            sealRequested.remove(number)
            relocation.remove(number)
        }
    }

    /// What `releaseWriter` did with a writer.
    enum Release {
        /// Back in the pool for the next put.
        case pooled
        /// Full: the caller must seal its file.
        case sealFull
        /// Worth sealing for its garbage before it is full: the caller must seal its file.
        case sealEarly
    }

    /// Counted garbage that makes a file with some live values worth sealing early: an eighth
    /// of `blobFileSize`. Why not less: every early seal starts a new file, so files stay at
    /// least this large (a file all garbage is sealed, and deleted, at any size).
    var earlySealMinimumBytes: UInt64 { UInt64(options.blobFileSize / 8) }

    /// The same for files of relocated values: a 32nd of `blobFileSize`. Why lower: what garbage
    /// collection moves is the newest version of values that are being overwritten, which the
    /// next memtables hide again, so such a file turns to garbage quickly and is best sealed
    /// (and collected) at a small size; it holds only what collection moved, so few are made.
    var relocationSealMinimumBytes: UInt64 { UInt64(options.blobFileSize / 32) }

    private let state = Locked(State())

    init(directory: String, options: Options, readers: BlobReaderCache, deleter: FileDeleter, counters: EngineCounters)
    {
        self.directory = directory
        self.options = options
        self.readers = readers
        self.deleter = deleter
        self.counters = counters
    }

    /// The one lifetime object for blob file `number` (created on first use).
    func file(_ number: UInt64) -> BlobFile {
        state.withLock { s in
            if let f = s.registry[number]?.file { return f }
            let f = BlobFile(number: number, deleter: deleter)
            if s.registry.count >= s.pruneAt {
                s.registry = s.registry.filter { $0.value.file != nil }
                s.pruneAt = max(64, 2 * s.registry.count)
            }
            s.registry[number] = WeakBlobFile(file: f)
            return f
        }
    }

    /// Lends an idle writer of the kind asked for, or one for a new file. Idle writers whose
    /// files were asked to be sealed (`requestSeal`) are not lent but handed over in `toSeal`:
    /// the caller seals them (a value put into one would outlive the memtable it was sealed for).
    func acquireWriter(forRelocation: Bool = false, toSeal: inout [BlobFileWriter], newFileNumber: () -> UInt64)
        throws -> BlobFileWriter
    {
        let pooled = state.withLock { s -> BlobFileWriter? in
            for w in s.idle where s.sealRequested.contains(w.number) {
                toSeal.append(w)
                s.forget(w.number)
            }
            s.idle.removeAll { s.unsealed[$0.number] == nil }
            guard let i = s.idle.lastIndex(where: { s.relocation.contains($0.number) == forRelocation }) else {
                return nil
            }
            return s.idle.remove(at: i)
        }
        if let pooled { return pooled }
        let number = newFileNumber()
        let w = try BlobFileWriter(
            path: FileNames.blob(directory, number), number: number, blobFile: file(number),
            layer: options.fileLayer)
        // The new name must survive a crash before any reference to it is acknowledged.
        try options.fileLayer.syncDirectory(directory)
        counters.blobFilesCreated.add(1, ordering: .relaxed)
        state.withLock { s in
            s.unsealed[number] = w
            if forRelocation { s.relocation.insert(number) }
        }
        return w
    }

    /// Returns a writer to the pool, unless its file is to be sealed (then the caller seals it).
    func releaseWriter(_ w: BlobFileWriter) -> Release {
        let full = w.recordBytes >= UInt64(options.blobFileSize)
        return state.withLock { s in
            let early = !full && worthSealingEarly(w, s)
            if full || early {
                s.forget(w.number)
            } else {
                s.idle.append(w)
            }
            return full ? .sealFull : early ? .sealEarly : .pooled
        }
    }

    /// Takes note of the current version's blob accounts (after an edit that may have counted
    /// garbage) and takes out of the pool the idle writers whose files are worth sealing
    /// early: the caller seals them. Lent writers are judged when they come back.
    func noteAccounts(_ accounts: [UInt64: BlobFileAccount]) -> [BlobFileWriter] {
        state.withLock { s in
            s.accounts = accounts.filter { s.unsealed[$0.key] != nil }
            // Idle: the last put's writes to a writer happened before it was put back (under this lock).
            let out = s.idle.filter { worthSealingEarly($0, s) }
            for w in out {
                s.idle.removeAll { $0 === w }
                s.forget(w.number)
            }
            return out
        }
    }

    /// Asks for files still open for appends to be sealed: a memtable being frozen hides much
    /// of their records (`Engine.switchMemtable`), which its flush will count as garbage.
    /// Why at the switch rather than after the flush: the file then holds little more than
    /// that memtable's values, and once the flush has counted them it is mostly garbage and
    /// collected whole, instead of growing on with the next memtable's values meanwhile.
    /// Lent writers are sealed when they come back, idle ones by the next `noteAccounts`.
    func requestSeal(_ numbers: some Sequence<UInt64>) {
        state.withLock { s in
            for n in numbers where s.unsealed[n] != nil { s.sealRequested.insert(n) }
        }
    }

    var hasSealRequests: Bool { state.withLock { !$0.sealRequested.isEmpty } }

    /// REQUIRES: `w` is not lent (being released, or idle), `state` locked.
    private func worthSealingEarly(_ w: BlobFileWriter, _ s: State) -> Bool {
        if s.sealRequested.contains(w.number) { return true }
        let minimum = s.relocation.contains(w.number) ? relocationSealMinimumBytes : earlySealMinimumBytes
        return s.accounts[w.number]?.worthSealingEarly(recordBytes: w.recordBytes, minimumBytes: minimum) ?? false
    }

    /// Forgets a writer without sealing it (after a failure that leaves its state unknown;
    /// recovery accounts for the file).
    func discardWriter(_ w: BlobFileWriter) {
        state.withLock { $0.forget(w.number) }
    }

    /// Takes every idle writer out of the pool (for sealing at close and before a manual
    /// compaction).
    func takeIdleWriters() -> [BlobFileWriter] {
        state.withLock { s in
            let all = s.idle
            s.idle = []
            for w in all { s.forget(w.number) }
            return all
        }
    }

    /// Numbers of files still being written (recovery must not treat them as finished).
    var unsealedNumbers: Set<UInt64> { state.withLock { Set($0.unsealed.keys) } }

    /// Makes every blob byte handed to the OS durable (before a WAL that refers to it is synced
    /// or deleted).
    func syncAll() throws { try sync(state.withLock { Array($0.unsealed.values) }) }

    /// `syncAll` for the files among `numbers` still open for appends (sealed ones were synced
    /// when sealed). Why a flush syncs only these: the active file is being appended to at full
    /// speed meanwhile, and syncing it too made a flush wait for the next memtable's bytes.
    func sync(files numbers: some Sequence<UInt64>) throws {
        try sync(state.withLock { s in numbers.compactMap { s.unsealed[$0] } })
    }

    private func sync(_ writers: [BlobFileWriter]) throws {
        var created = false
        for w in writers where w.unsynced.value.load(ordering: .acquiring) {
            try w.sync()
            created = true
        }
        if created { try options.fileLayer.syncDirectory(directory) }
    }

    // MARK: Reads

    /// Reads `buffer.count` bytes of the value at `from`, verifying each chunk it touches.
    /// With `chunkChecksums`, extends it with the stored checksum of every chunk read, in
    /// order: over a whole value that gives the reference's checksum.
    /// REQUIRES: `from + buffer.count <= ref.length`.
    func read(
        _ ref: BlobReference, from: UInt64, into buffer: UnsafeMutableRawBufferPointer,
        chunkChecksums: UnsafeMutablePointer<UInt32>? = nil
    ) throws {
        guard buffer.count > 0 else { return }
        let file = try readers.file(ref.fileNumber)
        let chunk = UInt64(BlobFormat.chunkSize)
        let stride = chunk + UInt64(BlobFormat.chunkTrailerSize)
        let first = from / chunk
        let last = (from + UInt64(buffer.count) - 1) / chunk
        // Up to 16 chunks (about 1 MiB) per pread.
        let perRead: UInt64 = 16
        let scratch = UnsafeMutableRawBufferPointer.allocate(
            byteCount: Int(min(last - first + 1, perRead) * stride), alignment: 16)
        defer { scratch.deallocate() }
        var out = 0
        var i = first
        while i <= last {
            let n = min(perRead, last - i + 1)
            let spanStart = BlobFormat.chunkOffset(ref.offset, i)
            let lastLen = min(chunk, ref.length - (i + n - 1) * chunk)
            let spanBytes = Int((n - 1) * stride + lastLen + UInt64(BlobFormat.chunkTrailerSize))
            let got = try file.read(
                into: UnsafeMutableRawBufferPointer(rebasing: scratch[0..<spanBytes]), at: Int64(spanStart))
            guard got == spanBytes else {
                throw SliceError.corruption(
                    "blob file is shorter than a value stored in it", path: file.path, offset: Int64(spanStart))
            }
            for j in 0..<n {
                let index = i + j
                let dataLen = Int(min(chunk, ref.length - index * chunk))
                let base = Int(j * stride)
                let data = UnsafeRawBufferPointer(rebasing: scratch[base..<(base + dataLen)])
                let stored = UnsafeRawBufferPointer(scratch).fixed32(at: base + dataLen)
                guard BlobFormat.chunkChecksum(data, index: UInt32(truncatingIfNeeded: index)) == stored else {
                    throw SliceError.corruption(
                        "blob chunk checksum mismatch", path: file.path,
                        offset: Int64(BlobFormat.chunkOffset(ref.offset, index)))
                }
                if let chunkChecksums {
                    chunkChecksums.pointee = CRC32C.checksum(
                        UnsafeRawBufferPointer(rebasing: scratch[(base + dataLen)..<(base + dataLen + 4)]),
                        extending: chunkChecksums.pointee)
                }
                let chunkStart = index * chunk
                let lo = Int(max(from, chunkStart) - chunkStart)
                let hi = Int(min(from + UInt64(buffer.count), chunkStart + UInt64(dataLen)) - chunkStart)
                if hi > lo {
                    (buffer.baseAddress! + out).copyMemory(from: data.baseAddress! + lo, byteCount: hi - lo)
                    out += hi - lo
                }
            }
            i += n
        }
        counters.blobBytesRead.add(out, ordering: .relaxed)
    }

    /// The whole value, with every chunk and the value checksum verified.
    func readAll(_ ref: BlobReference) throws -> [UInt8] {
        guard ref.length <= UInt64(Int.max) else { throw SliceError(.invalidArgument, "value too large for memory") }
        var crc: UInt32 = 0
        let value = try [UInt8](unsafeUninitializedCapacity: Int(ref.length)) { buf, n in
            try read(ref, from: 0, into: UnsafeMutableRawBufferPointer(buf), chunkChecksums: &crc)
            n = Int(ref.length)
        }
        guard crc == ref.checksum else {
            throw SliceError.corruption(
                "blob value checksum mismatch", path: FileNames.blob(directory, ref.fileNumber),
                offset: Int64(ref.offset))
        }
        return value
    }

    /// Reads and verifies a value piece by piece (for `check`), without holding it in memory.
    func verify(_ ref: BlobReference) throws {
        let piece = 1 << 20
        var buf = [UInt8](repeating: 0, count: piece)
        var crc: UInt32 = 0
        var at: UInt64 = 0
        while at < ref.length {
            let n = Int(min(UInt64(piece), ref.length - at))
            try buf.withUnsafeMutableBytes {
                try read(
                    ref, from: at, into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<n]), chunkChecksums: &crc)
            }
            at += UInt64(n)
        }
        guard crc == ref.checksum else {
            throw SliceError.corruption(
                "blob value checksum mismatch", path: FileNames.blob(directory, ref.fileNumber),
                offset: Int64(ref.offset))
        }
    }
}

private struct WeakBlobFile {
    weak var file: BlobFile?
}
