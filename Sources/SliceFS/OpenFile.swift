import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The staged content of a file that is open through the mount.
///
/// All handles of one path share one `OpenFile`, so a write is visible to every reader of the
/// mount at once. Where the content lives while the file is open (`Content`):
///
/// ```
/// store   nothing staged: reads are ranged gets, stat is valueSize (no value is read)
/// memory  small files, up to SliceFileSystem.stagingMemoryLimit, edited in place
/// stream  a file written from offset 0 sequentially (cp, dd, rsync, tar): bytes go straight
///         into a ValueWriter (a blob file); published on flush/fsync/close. A read or a
///         write elsewhere publishes it first, then stages again.
/// spill   a large file written out of order: an unnamed temporary file in the data
///         directory, streamed into the store on flush/fsync/close
/// ```
/// Memory per open file is therefore bounded by the memory limit plus 1 MiB of write buffer,
/// whatever the file's size. The engine gets value and attributes in one atomic batch.
///
/// Locking: `state` guards everything; `SliceFileSystem.metaLock` is taken before it when both
/// are needed (never the reverse).
final class OpenFile: Sendable {
    enum Content {
        case store
        case memory([UInt8])
        case stream(ValueWriter, length: UInt64)
        case spill(SpillFile, length: UInt64)
    }

    struct State {
        var key: [UInt8]
        var content: Content = .store
        var dirty = false
        var unlinked = false
        /// Handles open on this file (the table entry goes away at zero).
        var opens = 0
        var mtime: Timestamp?
        /// Opened through the key's plain path (not a `%=` entry) while the key had no keys
        /// below it: the path names this file, and nothing can be created below a file through
        /// the mount, so it stays that way while the file is open.
        var plain = false
        /// The file's attribute record, cached for a `plain` file so that `stat`, `getxattr` and
        /// the commit of a write need no lookup in the store (the kernel asks for attributes
        /// after every create and for `security.capability` before every write). Set and
        /// changed only under `SliceFileSystem.metaLock`, together with the store's copy: the
        /// mount is its store's only writer. nil: not known, ask the store.
        var record: NodeRecord?
        /// Handles open on this file with FOPEN_DIRECT_IO (see `SliceFileSystem.create`).
        /// While there is one, every new handle bypasses the page cache too, so the kernel
        /// never caches a page that a write around the cache could make stale.
        var uncachedHandles = 0
        /// What the kernel does before a write through its page cache (`file_remove_privs`)
        /// but leaves to us for a write that bypasses it, pending until the next commit: clear
        /// the set-user-ID bit and a group-executable file's set-group-ID bit (a writer without
        /// CAP_FSETID), drop the `security.capability` attribute (every writer).
        var dropSetID = false
        var dropCapability = false

        /// `rec` as it is once the pending privilege drops are applied.
        func applyingDrops(to rec: NodeRecord) -> NodeRecord {
            var rec = rec
            if dropSetID {
                rec.mode &= ~UInt32(S_ISUID)
                if rec.mode & UInt32(S_IXGRP) != 0 { rec.mode &= ~UInt32(S_ISGID) }
            }
            if dropCapability { rec.xattrs.removeValue(forKey: OpenFile.capabilityAttribute) }
            return rec
        }

        /// This file's share of `DeferredSpace`: its staged bytes that a commit at RELEASE
        /// still has to write (`uncommittedBytes` when written through a no-flush handle).
        var deferredBytes = 0

        /// Staged bytes that are not in a file of the store yet and that a commit will write:
        /// all of a memory or spill staging, and for a stream what its writer may still hold
        /// (its buffer and the buffers in flight: `ValueWriter.maxUnwritten`).
        var uncommittedBytes: Int {
            switch content {
            case .store: 0
            case .memory(let data): data.count
            case .stream(_, let length): Int(clamping: min(length, ValueWriter.maxUnwritten))
            case .spill(_, let length): Int(clamping: length)
            }
        }

        /// Size of the staged content; nil when nothing is staged.
        var stagedSize: UInt64? {
            switch content {
            case .store: return nil
            case .memory(let d): return UInt64(d.count)
            case .stream(_, let n), .spill(_, let n): return n
            }
        }

        /// Replaces the content, dropping an unpublished stream.
        mutating func replace(with new: Content) {
            if case .stream(let w, _) = content { w.abort() }
            content = new
        }
    }

    let state: Locked<State>

    static let capabilityAttribute = Array("security.capability".utf8)

    init(key: [UInt8]) { state = Locked(State(key: key)) }
}

/// A large file's content while it is edited out of order: an unnamed temporary file
/// (`File.temporary`) in the store's directory, so it uses the same disk and vanishes with its
/// descriptor, even if the daemon is killed.
final class SpillFile: Sendable {
    private let file: File

    init(directory: String) throws { file = try File.temporary(in: directory) }

    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        try file.write(buffer, at: Int64(offset))
    }

    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
        try file.read(into: buffer, at: Int64(offset))
    }

    func truncate(to size: UInt64) throws { try file.truncate(to: Int64(size)) }
}

/// What a FUSE file handle (`fi->fh`) refers to.
enum Handle {
    /// `uncached`: opened with FOPEN_DIRECT_IO, counted in `OpenFile.State.uncachedHandles`.
    /// `noFlush`: opened with FOPEN_NOFLUSH, so `close` sends no FLUSH and the handle's writes
    /// are committed at RELEASE, or earlier by `fsync`, `rename` or `utimens`; `write` reserves
    /// their disk space (`DeferredSpace`; see `SliceFileSystem.create`).
    case file(OpenFile, uncached: Bool, noFlush: Bool)
    case control(ControlFile)
    case directory(DirectoryHandle)
}

/// An open directory: its listing, built when `readdir` starts at offset 0 and then handed
/// out from the offset each kernel request asks for.
final class DirectoryHandle: Sendable {
    let listing = Locked<DirectoryListing?>(nil)
}
