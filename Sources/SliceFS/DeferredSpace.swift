import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Disk space promised to writes whose commit comes after `close` returned.
///
/// A file created write-only closes without a FLUSH (see `SliceFileSystem.create`): its
/// staged bytes are committed at RELEASE, when no caller is left to hear of a full disk. So a
/// write on such a handle is accepted only if the store's filesystem has room for every byte
/// staged that way, this write's included, plus `reserve`; otherwise it fails with ENOSPC
/// at once, as a write to ext4 does when it cannot reserve blocks. Each file's share is kept
/// in `OpenFile.State.deferredBytes`, added here when its staging grows and given back when
/// its staging is committed or dropped.
///
/// Thread-safety: `total` is atomic; the callers hold the file's state lock while they change
/// its share, so a share and its part of `total` move together.
final class DeferredSpace: Sendable {
    /// Room left beyond the staged bytes: a WAL chunk (the log allocates 4 MiB at a time)
    /// and the records' framing.
    static let reserve = 4 << 20

    private let directory: Int32
    private let total = Atomic<Int>(0)

    /// `path`: the store's directory (opened once: `fstatvfs` skips the path walk).
    init(path: String) {
        directory = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }

    deinit { if directory >= 0 { Glibc.close(directory) } }

    /// Bytes staged by all files and not committed yet.
    var staged: Int { total.load(ordering: .relaxed) }

    /// Throws ENOSPC unless the filesystem has room for `adding` more staged bytes.
    func check(adding: Int) throws {
        var st = statvfs()
        guard directory >= 0, fstatvfs(directory, &st) == 0 else { return }  // not known: the commit finds out
        let free = Int(clamping: UInt64(st.f_bavail) &* UInt64(st.f_frsize))
        if free < staged + adding + DeferredSpace.reserve { throw SliceFileSystem.FSError(-ENOSPC) }
    }

    /// Sets a file's share to `bytes`. REQUIRES: the file's state lock.
    func set(_ share: inout Int, to bytes: Int) {
        if bytes != share { total.add(bytes - share, ordering: .relaxed) }
        share = bytes
    }
}
