#if canImport(Glibc)
    import Glibc
#endif

/// Disk space the store keeps for its own way out of a full disk: a file (`RESERVE` in the
/// store's directory) of `Options.spaceReserve` bytes, allocated with `posix_fallocate`.
///
/// Why: on a full disk, removing data needs a little space first (a WAL extent for the
/// deletions, a table for the flush that drops them, MANIFEST edits, room to move the values a
/// garbage collection keeps), so without a reserve a store that filled its disk could not even
/// be emptied (ext4 keeps blocks back for root for the same reason). The engine gives the
/// reserve up `step` bytes at a time when a write that frees space (`WriteBatch.freesSpace`:
/// deletions, an `rm` through the mount), a recovery, or its own background work (flushes and
/// compactions, which are what hand space back) fails for space.
///
/// The bytes given up stay reserved all the same: writes that do not free space may not use
/// them (`shortfall`, checked by `Engine.write` and by SliceFS before it buffers a write), so
/// that a writer filling the disk cannot take what the next `rm` needs. The file grows back once
/// the disk has twice the shortfall free.
///
/// Threads: every method may be called from any thread; `state` serializes them.
final class SpaceReserve: Sendable {
    let path: String
    /// The size the reserve is kept at.
    let bytes: Int
    /// What one `release` gives up: a WAL extent (4 MiB), or all of a smaller reserve.
    let step: Int
    /// Writes up to this many bytes (metadata: a file's record, a directory entry) may use the
    /// reserve: they are what a user needs to tidy up a full disk (a create to test, a rename),
    /// and it takes tens of thousands of them to use one step.
    static let smallWrite = 4 << 10
    private let directory: String
    private let layer: any FileLayer
    /// The file's size now.
    private let state: Locked<Int>

    init(directory: String, bytes: Int, layer: any FileLayer) {
        self.directory = directory
        self.path = directory + "/RESERVE"
        self.bytes = bytes
        self.step = min(bytes, AppendMapping.chunk)
        self.layer = layer
        state = Locked(Int(clamping: layer.fileSize(path) ?? 0))
    }

    /// Bytes of the reserve given up and not taken back (0: it is whole).
    var shortfall: Int { state.withLock { max(0, bytes - $0) } }

    var isWhole: Bool { shortfall == 0 }

    /// Bytes the disk under the store has free for an unprivileged writer (nil: unknown).
    func freeBytes() -> Int? {
        var st = statvfs()
        guard statvfs(directory, &st) == 0 else { return nil }
        return Int(clamping: UInt64(st.f_bavail) &* UInt64(st.f_frsize))
    }

    /// Grows the file back to `bytes` if the disk has twice what that takes free (so it does
    /// not take back at once what a deletion just freed). Returns whether the reserve is whole.
    @discardableResult
    func ensure() -> Bool {
        state.withLock { size in
            guard size < bytes else { return true }
            guard let free = freeBytes(), free >= 2 * (bytes - size) else { return false }
            do {
                let file = try layer.open(path, flags: O_RDWR | O_CREAT, mode: File.defaultMode)
                try layer.allocate(file, offset: 0, length: Int64(bytes))
                try layer.sync(file)
                size = bytes
            } catch {
                // posix_fallocate may have allocated part of it: keep what the file holds.
                size = Int(clamping: layer.fileSize(path) ?? 0)
            }
            return size >= bytes
        }
    }

    /// Gives up `step` bytes of the reserve (the whole file once it is that small). Returns
    /// whether that freed anything, that is whether an operation that failed for space is worth
    /// trying again.
    @discardableResult
    func release() -> Bool {
        state.withLock { size in
            guard size > 0, layer.exists(path) else {
                size = 0
                return false
            }
            let target = max(0, size - step)
            do {
                if target == 0 {
                    try layer.remove(path)
                } else {
                    let file = try layer.open(path, flags: O_RDWR, mode: 0)
                    try layer.truncate(file, to: Int64(target))
                }
                size = target
                return true
            } catch {
                return false
            }
        }
    }
}
