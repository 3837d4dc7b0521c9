import SliceKV

/// What a FUSE file handle (`fi->fh`) refers to.
enum Handle {
    /// `uncached`: opened with FOPEN_DIRECT_IO (its writes bypass the page cache, so the
    /// privilege drops the kernel does before a cached write are ours: `SliceFileSystem.write`).
    case file(OpenFile, writable: Bool, uncached: Bool = false)
    case control(ControlFile)
    case directory(DirectoryHandle)
}

/// An open directory: its listing, built when `readdir` starts at offset 0 and then handed out
/// from the offset each kernel request asks for.
final class DirectoryHandle: Sendable {
    let path: [UInt8]
    let listing = Locked<DirectoryListing?>(nil)

    init(path: [UInt8]) { self.path = path }
}

/// Handles by number. Numbers are never reused while the mount lives.
final class HandleTable: Sendable {
    private let state = Locked<(next: UInt64, table: [UInt64: Handle])>((1, [:]))

    func add(_ h: Handle) -> UInt64 {
        state.withLock { s in
            let fh = s.next
            s.next += 1
            s.table[fh] = h
            return fh
        }
    }

    func handle(_ fh: UInt64) -> Handle? { state.withLock { $0.table[fh] } }

    @discardableResult
    func remove(_ fh: UInt64) -> Handle? { state.withLock { $0.table.removeValue(forKey: fh) } }
}
