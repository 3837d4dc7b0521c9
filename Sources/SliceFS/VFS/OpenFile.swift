import SliceKV
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A regular file while handles are open on it: the writes not committed to the store yet.
///
/// All handles of one inode share one `OpenFile`. Writes land in whole-chunk buffers
/// (`dirty`) and reach the store as one batch per commit: the chunks they touched, the size
/// and the record's times. So a burst of small writes costs one chunk write, and a commit
/// costs the chunks it changed, not the file.
///
/// ```
///            write            flush / fsync / fill limit / truncate / release
///   clean ───────────► dirty ───────────────────────────────────────────────► clean
///     │ unlink of the last name                                    (commit)
///     ▼
///   orphaned (reads and writes still work) ── last release and forget ──► purged
/// ```
/// Memory: at most `dirtyLimit` bytes of buffers per file, and `DirtyBudget.limit` over all
/// files (a write past either commits first), whatever the sizes and offsets written.
///
/// Locking: `state`; taken after the inode's stripe when both are needed.
final class OpenFile: Sendable {
    static let dirtyLimit = 64 * FileContent.chunkSize
    /// Bytes staged in a blob file before a commit publishes them (a commit per 16 MiB of a
    /// stream: one batch of 256 chunk references).
    static let stagedLimit: UInt64 = 16 << 20

    struct State {
        var content: Node.Content
        /// Handles open (the table entry goes at zero).
        var opens = 0
        /// The size with uncommitted writes; nil until known (read from the store on demand).
        var size: UInt64?
        /// The size in the store (at the last commit), valid once `size` is known. No chunk
        /// at or past it is stored (a truncate deletes them), so a write there reads nothing.
        var storedSize: UInt64 = 0
        /// Whole-chunk buffers of written chunks, by chunk index.
        var dirty: [UInt64: [UInt8]] = [:]
        /// Chunks overwritten whole and already written to a blob file, by chunk index: they
        /// are published by the next commit (`stager`'s), and never also in `dirty`.
        var staged: [UInt64: StagedValue] = [:]
        /// Holds the blob file of `staged` (and a `StagingSlots` slot) until the commit.
        var stager: StagedValueWriter?
        /// A staging that failed took the staged chunks with it: the next commit reports it.
        var stagingError: (any Error)?
        /// The stored length of each dirty chunk before it was written (for `blocks`).
        var storedBefore: [UInt64: Int] = [:]
        /// The size changed since the last commit (the header must be written).
        var sizeChanged = false
        /// When the last write since the last commit came (nil: none): the mtime a stat shows
        /// and the commit sets.
        var modifiedAt: Timestamp?
        /// The key of an API-written file read in place (`content` is `.plain`).
        var plainKey: [UInt8]?
        /// Another mount of a shared store freed this file (its last name went there): reads
        /// and writes answer ESTALE, as NFS does (`storeChangedElsewhere`).
        var freedElsewhere = false

        var dirtyBytes: Int { dirty.count * FileContent.chunkSize }
        /// Bytes the next commit adds to the file's stored length (its record's `blocks`), as
        /// `commit` counts them: buffered chunks up to the size, staged chunks, minus what each
        /// replaces.
        var pendingStoredBytes: Int64 {
            guard let size else { return 0 }
            var n: Int64 = 0
            for index in dirty.keys {
                let base = index << UInt64(FileContent.chunkShift)
                let length = base < size ? min(UInt64(FileContent.chunkSize), size - base) : 0
                n += Int64(length) - Int64(storedBefore[index] ?? 0)
            }
            for (index, value) in staged { n += Int64(value.count) - Int64(storedBefore[index] ?? 0) }
            return n
        }

        /// Nothing to commit.
        var isClean: Bool { dirty.isEmpty && staged.isEmpty && !sizeChanged && modifiedAt == nil }
        var stagedBytes: UInt64 { UInt64(staged.count) << UInt64(FileContent.chunkShift) }

        /// The size, read from the store by `load` the first time.
        mutating func knownSize(_ load: () throws -> UInt64) rethrows -> UInt64 {
            if let size { return size }
            let stored = try load()
            size = stored
            storedSize = stored
            return stored
        }

        /// Whether chunk `index` may hold stored bytes (it starts before the stored size).
        func mayBeStored(_ index: UInt64) -> Bool { index << UInt64(FileContent.chunkShift) < storedSize }
    }

    let ino: InodeNumber
    let state: Locked<State>

    init(ino: InodeNumber, content: Node.Content) {
        self.ino = ino
        state = Locked(State(content: content))
    }
}

/// The open files by inode number, and the inodes freed at their unlink (which no open may
/// bring back).
final class OpenFileTable: Sendable {
    private struct State {
        var files: [InodeNumber: OpenFile] = [:]
        /// Inodes an unlink freed at once because nothing had them open (`claimUnused`), until
        /// the kernel forgets them: an OPEN racing the unlink gets ENOENT, never a file whose
        /// chunks are gone.
        var freed: Set<InodeNumber> = []
    }

    private let state = Locked(State())

    /// Removes `f` if no handle is open on it and it has nothing left to commit (a file the
    /// write-back held past its last close); true when removed.
    func retire(_ f: OpenFile) -> Bool {
        state.withLock { s in
            guard s.files[f.ino] === f, f.state.withLock({ $0.opens == 0 && $0.isClean }) else { return false }
            s.files[f.ino] = nil
            return true
        }
    }

    /// The open file of `ino`, made on first open; counts one more open. nil when an unlink
    /// freed the inode (`claimUnused`).
    func acquire(_ ino: InodeNumber, content: Node.Content) -> OpenFile? {
        state.withLock { s in
            if s.freed.contains(ino) { return nil }
            let f = s.files[ino] ?? OpenFile(ino: ino, content: content)
            s.files[ino] = f
            f.state.withLock { $0.opens += 1 }
            return f
        }
    }

    func file(_ ino: InodeNumber) -> OpenFile? { state.withLock { $0.files[ino] } }

    /// True, and `ino` marked freed, when nothing has it open: its unlink may free it in the
    /// same batch. `unclaim` if that batch fails; `forgotten` once the kernel gives it back.
    func claimUnused(_ ino: InodeNumber) -> Bool {
        state.withLock { s in
            guard s.files[ino] == nil else { return false }
            s.freed.insert(ino)
            return true
        }
    }

    func unclaim(_ ino: InodeNumber) { _ = state.withLock { $0.freed.remove(ino) } }

    /// The kernel no longer holds `ino`: no request can name it again.
    func forgotten(_ ino: InodeNumber) { unclaim(ino) }

    enum Release {
        /// Other handles are open.
        case notLast
        /// The last close of a clean file: the entry is gone.
        case removed
        /// The last close, with writes not committed yet (the write-back holds them, or a
        /// commit failed, or another handle wrote after this one committed): the entry stays.
        case keptUnclean
    }

    /// Counts one close. The decision to remove is made here, under the table's lock and the
    /// file's, so writes another handle made after this one's commit are never dropped.
    func release(_ f: OpenFile) -> Release {
        state.withLock { s in
            let (last, clean) = f.state.withLock { st -> (Bool, Bool) in
                st.opens -= 1
                return (st.opens == 0, st.isClean)
            }
            guard last else { return .notLast }
            guard clean else { return .keptUnclean }
            s.files[f.ino] = nil
            return .removed
        }
    }

    /// Removes `f` whatever it holds, if no handle is open on it (its writes could not be
    /// committed); true when removed.
    func discard(_ f: OpenFile) -> Bool {
        state.withLock { s in
            guard s.files[f.ino] === f, f.state.withLock({ $0.opens == 0 }) else { return false }
            s.files[f.ino] = nil
            return true
        }
    }

    var all: [OpenFile] { state.withLock { Array($0.files.values) } }
}

/// Open files that may stream whole chunks straight to a blob file at once (each holds a blob
/// file and about 3 MiB of its buffers until its next commit); the others buffer.
final class StagingSlots: Sendable {
    static let limit = 4
    private let used = Atomic<Int>(0)

    func take() -> Bool {
        var n = used.load(ordering: .relaxed)
        while n < StagingSlots.limit {
            let (done, now) = used.compareExchange(expected: n, desired: n + 1, ordering: .acquiringAndReleasing)
            if done { return true }
            n = now
        }
        return false
    }

    func give() { used.subtract(1, ordering: .acquiringAndReleasing) }
}

/// Bytes buffered in dirty chunks across all open files, bounded so that many files written
/// at once cannot grow the daemon without limit.
final class DirtyBudget: Sendable {
    static let limit = 256 << 20
    private let total = Atomic<Int>(0)

    var bytes: Int { total.load(ordering: .relaxed) }
    var isExceeded: Bool { bytes > DirtyBudget.limit }

    func add(_ n: Int) { total.add(n, ordering: .relaxed) }
}
