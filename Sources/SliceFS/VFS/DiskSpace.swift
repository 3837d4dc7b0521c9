import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// Whether the store's disk can take more buffered writes.
///
/// Writes wait in `OpenFile` buffers until a commit (at close, fsync or a fill limit), when
/// the caller of `write` is gone. So a write is accepted only if the filesystem under the
/// store has room for every byte buffered (`DirtyBudget`), this write's included, plus
/// `reserve`; otherwise it fails with ENOSPC at once, as ext4 does when it cannot reserve
/// blocks, and nothing of it stays.
final class DiskSpace: Sendable {
    /// Room kept beyond the buffered bytes: a WAL extent (the log grows 4 MiB at a time) and
    /// the records' framing.
    static let reserve = 4 << 20

    private let directory: Int32

    /// `path`: the store's directory (opened once: `fstatvfs` skips the path walk); nil: no
    /// local disk holds the data (every check passes).
    init(path: String?) { directory = path.map { Glibc.open($0, O_RDONLY | O_DIRECTORY | O_CLOEXEC) } ?? -1 }

    deinit { if directory >= 0 { Glibc.close(directory) } }

    /// Throws ENOSPC unless the disk has room for `buffered` bytes plus the reserve, not
    /// counting `kept` bytes (the part of the store's space reserve given up on a full disk,
    /// which only deletions may use: `SliceDB.spaceReserveShortfall`).
    func check(buffered: Int, kept: Int) throws {
        var st = statvfs()
        guard directory >= 0, fstatvfs(directory, &st) == 0 else { return }  // unknown: the commit finds out
        let free = Int(clamping: UInt64(st.f_bavail) &* UInt64(st.f_frsize))
        if free - kept < buffered + DiskSpace.reserve { throw FSError(ENOSPC) }
    }
}
