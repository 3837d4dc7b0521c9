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

    struct State {
        var content: Node.Content
        /// Handles open (the table entry goes at zero).
        var opens = 0
        /// The size with uncommitted writes; nil until known (read from the store on demand).
        var size: UInt64?
        /// Whole-chunk buffers of written chunks, by chunk index.
        var dirty: [UInt64: [UInt8]] = [:]
        /// The stored length of each dirty chunk before it was written (for `blocks`).
        var storedBefore: [UInt64: Int] = [:]
        /// The size changed since the last commit (the header must be written).
        var sizeChanged = false
        /// Written since the last commit (mtime and ctime to set).
        var modified = false
        /// The key of an API-written file read in place (`content` is `.plain`).
        var plainKey: [UInt8]?

        var dirtyBytes: Int { dirty.count * FileContent.chunkSize }
    }

    let ino: InodeNumber
    let state: Locked<State>

    init(ino: InodeNumber, content: Node.Content) {
        self.ino = ino
        state = Locked(State(content: content))
    }
}

/// The open files by inode number.
final class OpenFileTable: Sendable {
    private let files = Locked<[InodeNumber: OpenFile]>([:])

    /// The open file of `ino`, made on first open; counts one more open.
    func acquire(_ ino: InodeNumber, content: Node.Content) -> OpenFile {
        files.withLock { table in
            let f = table[ino] ?? OpenFile(ino: ino, content: content)
            table[ino] = f
            f.state.withLock { $0.opens += 1 }
            return f
        }
    }

    func file(_ ino: InodeNumber) -> OpenFile? { files.withLock { $0[ino] } }

    /// Counts one close; true (and the entry removed) when it was the last.
    func release(_ f: OpenFile) -> Bool {
        files.withLock { table in
            let last = f.state.withLock { s -> Bool in
                s.opens -= 1
                return s.opens == 0
            }
            if last { table[f.ino] = nil }
            return last
        }
    }

    var all: [OpenFile] { files.withLock { Array($0.values) } }
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
