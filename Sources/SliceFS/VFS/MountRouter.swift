import CFuse
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// What `slice mount` serves: the live tree (`SliceFileSystem`) with `.snapshots` at its root
/// (`SnapshotDirectory`). Each request goes by inode number: `.snapshots` and the numbers of
/// snapshot views (`SnapshotInodes`) to the snapshots, all else to the live tree. Snapshots
/// are read-only: every change under `.snapshots` but mkdir and rmdir of a snapshot answers
/// EROFS, and links and renames between a snapshot and the live tree EXDEV.
public final class MountRouter: LowLevelOperations {
    public let live: SliceFileSystem
    let snapshots: SnapshotDirectory

    /// `listSnapshots`: `.snapshots` appears in the root's listing (`-o snapdir=visible`).
    /// Hidden by default, as ZFS's `.zfs` (`snapdir=hidden`): it is always reachable by name,
    /// but `cp -a`, `rsync -a`, `find` and `du` of the mount do not walk into every snapshot.
    /// `db`: the live filesystem's store (`live.db`).
    public init(live: SliceFileSystem, db: SliceDB, listSnapshots: Bool = false) {
        self.live = live
        let snapshots = SnapshotDirectory(live: live, db: db)
        self.snapshots = snapshots
        if listSnapshots {
            live.snapshotsEntry = { plus in
                DirectoryEntry(
                    name: SnapshotDirectory.name, ino: SnapshotDirectory.ino, type: S_IFDIR, nextOffset: 0,
                    entry: plus ? snapshots.entry() : nil)
            }
        }
    }

    public var notifier: KernelNotifier? { live.notifier }
    public var requestCounts: FuseRequestCounts? { live.requestCounts }

    public func mounted() { live.mounted() }

    public func unmounting() {
        live.unmounting()
        snapshots.closeAll()
    }

    // MARK: Routing

    private enum Target {
        case live
        case directory
        case view(SnapshotDirectory.View, InodeNumber)
    }

    private func route(_ ino: InodeNumber) throws -> Target {
        if ino == SnapshotDirectory.ino { return .directory }
        guard SnapshotInodes.contains(ino) else { return .live }
        let (v, inner) = try snapshots.resolve(ino)
        return .view(v, inner)
    }

    private func isSnapshotsName(_ parent: InodeNumber, _ name: [UInt8]) -> Bool {
        parent == InodeNumbers.root && name == SnapshotDirectory.name
    }

    /// A view's entry for the kernel; `..` of a view's root is `.snapshots`. A readdirplus
    /// entry is counted as a lookup here (so a racing FORGET cannot drop its number before the
    /// kernel has it); the caller gives it back if the entry is not sent.
    private func outer(_ e: DirectoryEntry, _ v: SnapshotDirectory.View, inner: InodeNumber) -> DirectoryEntry {
        var out = e
        if e.name == [0x2e, 0x2e] && inner == InodeNumbers.root {
            out.ino = SnapshotDirectory.ino
        } else {
            out.ino = snapshots.inodes.outer(.init(view: v.id, ino: e.ino), counting: false)
        }
        if let entry = e.entry { out.entry = snapshots.translated(entry, v, counting: true) }
        return out
    }

    // MARK: Names

    public func lookup(parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        if isSnapshotsName(parent, name) { return snapshots.entry() }
        switch try route(parent) {
        case .live: return try live.lookup(parent: parent, name: name, caller: caller)
        case .directory: return try snapshots.lookup(name)
        case .view(let v, let inner):
            return snapshots.translated(try v.fs.lookup(parent: inner, name: name, caller: caller), v)
        }
    }

    public func forget(_ ino: InodeNumber, lookups: UInt64) {
        if ino == SnapshotDirectory.ino { return }
        guard SnapshotInodes.contains(ino) else { return live.forget(ino, lookups: lookups) }
        guard let inner = snapshots.inodes.forget(ino, lookups) else { return }
        (try? snapshots.resolveView(inner.view))?.fs.forget(inner.ino, lookups: lookups)
    }

    public func getattr(_ ino: InodeNumber, fh: UInt64?, caller: Caller) throws -> (Attributes, timeout: Double) {
        switch try route(ino) {
        case .live: return try live.getattr(ino, fh: fh, caller: caller)
        case .directory: return (snapshots.attributes(), 0)
        case .view(let v, let inner):
            let (a, t) = try v.fs.getattr(inner, fh: fh, caller: caller)
            return (snapshots.translated(a, v), t)
        }
    }

    public func setattr(_ ino: InodeNumber, _ changes: AttributeChanges, fh: UInt64?, caller: Caller) throws -> (
        Attributes, timeout: Double
    ) {
        guard case .live = try route(ino) else { throw FSError(EROFS) }
        return try live.setattr(ino, changes, fh: fh, caller: caller)
    }

    public func readlink(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        switch try route(ino) {
        case .live: return try live.readlink(ino, caller: caller)
        case .directory: throw FSError(EINVAL)
        case .view(let v, let inner): return try v.fs.readlink(inner, caller: caller)
        }
    }

    /// The live tree's parent for a change, or EEXIST/EROFS for `.snapshots` and views.
    private func changing(_ parent: InodeNumber, _ name: [UInt8]) throws {
        if isSnapshotsName(parent, name) { throw FSError(EEXIST) }
        guard case .live = try route(parent) else { throw FSError(EROFS) }
    }

    public func mknod(parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64, caller: Caller) throws
        -> EntryReply
    {
        try changing(parent, name)
        return try live.mknod(parent: parent, name: name, mode: mode, rdev: rdev, caller: caller)
    }

    public func mkdir(parent: InodeNumber, name: [UInt8], mode: mode_t, caller: Caller) throws -> EntryReply {
        if parent == SnapshotDirectory.ino { return try snapshots.mkdir(name, caller: caller) }
        try changing(parent, name)
        return try live.mkdir(parent: parent, name: name, mode: mode, caller: caller)
    }

    public func unlink(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        if isSnapshotsName(parent, name) { throw FSError(EISDIR) }
        switch try route(parent) {
        case .live: try live.unlink(parent: parent, name: name, caller: caller)
        case .directory: throw FSError(EISDIR)
        case .view: throw FSError(EROFS)
        }
    }

    public func rmdir(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        if isSnapshotsName(parent, name) { throw FSError(EBUSY) }
        switch try route(parent) {
        case .live: try live.rmdir(parent: parent, name: name, caller: caller)
        case .directory: try snapshots.rmdir(name, caller: caller)
        case .view: throw FSError(EROFS)
        }
    }

    public func symlink(target: [UInt8], parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        try changing(parent, name)
        return try live.symlink(target: target, parent: parent, name: name, caller: caller)
    }

    public func rename(
        parent: InodeNumber, name: [UInt8], newParent: InodeNumber, newName: [UInt8], flags: UInt32, caller: Caller
    ) throws {
        if isSnapshotsName(parent, name) || isSnapshotsName(newParent, newName) { throw FSError(EBUSY) }
        switch (try route(parent), try route(newParent)) {
        case (.live, .live):
            try live.rename(
                parent: parent, name: name, newParent: newParent, newName: newName, flags: flags, caller: caller)
        case (.live, _), (_, .live): throw FSError(EXDEV)
        default: throw FSError(EROFS)
        }
    }

    public func link(_ ino: InodeNumber, newParent: InodeNumber, newName: [UInt8], caller: Caller) throws -> EntryReply
    {
        try changing(newParent, newName)
        guard case .live = try route(ino) else { throw FSError(EXDEV) }
        return try live.link(ino, newParent: newParent, newName: newName, caller: caller)
    }

    // MARK: Files

    public func open(_ ino: InodeNumber, flags: Int32, caller: Caller) throws -> OpenReply {
        switch try route(ino) {
        case .live: return try live.open(ino, flags: flags, caller: caller)
        case .directory: throw FSError(EISDIR)
        case .view(let v, let inner):
            if flags & O_ACCMODE != O_RDONLY || flags & O_TRUNC != 0 { throw FSError(EROFS) }
            return try v.fs.open(inner, flags: flags, caller: caller)
        }
    }

    public func create(parent: InodeNumber, name: [UInt8], mode: mode_t, flags: Int32, caller: Caller) throws -> (
        EntryReply, OpenReply
    ) {
        try changing(parent, name)
        return try live.create(parent: parent, name: name, mode: mode, flags: flags, caller: caller)
    }

    public func read(_ ino: InodeNumber, fh: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int
    {
        switch try route(ino) {
        case .live: return try live.read(ino, fh: fh, offset: offset, into: buffer)
        case .directory: throw FSError(EISDIR)
        case .view(let v, let inner): return try v.fs.read(inner, fh: fh, offset: offset, into: buffer)
        }
    }

    public func write(_ ino: InodeNumber, fh: UInt64, offset: UInt64, data: UnsafeRawBufferPointer, caller: Caller)
        throws -> Int
    {
        guard case .live = try route(ino) else { throw FSError(EROFS) }
        return try live.write(ino, fh: fh, offset: offset, data: data, caller: caller)
    }

    public func flush(_ ino: InodeNumber, fh: UInt64, caller: Caller) throws {
        switch try route(ino) {
        case .live: try live.flush(ino, fh: fh, caller: caller)
        case .directory: return
        case .view(let v, let inner): try v.fs.flush(inner, fh: fh, caller: caller)
        }
    }

    public func release(_ ino: InodeNumber, fh: UInt64) {
        switch try? route(ino) {
        case .live?: live.release(ino, fh: fh)
        case .view(let v, let inner)?: v.fs.release(inner, fh: fh)
        default: return
        }
    }

    public func fsync(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws {
        guard case .live = try route(ino) else { return }
        try live.fsync(ino, fh: fh, dataOnly: dataOnly)
    }

    public func fallocate(_ ino: InodeNumber, fh: UInt64, mode: Int32, offset: UInt64, length: UInt64) throws {
        guard case .live = try route(ino) else { throw FSError(EROFS) }
        try live.fallocate(ino, fh: fh, mode: mode, offset: offset, length: length)
    }

    public func lseek(_ ino: InodeNumber, fh: UInt64, offset: UInt64, whence: Int32) throws -> UInt64 {
        switch try route(ino) {
        case .live: return try live.lseek(ino, fh: fh, offset: offset, whence: whence)
        case .directory: throw FSError(EINVAL)
        case .view(let v, let inner): return try v.fs.lseek(inner, fh: fh, offset: offset, whence: whence)
        }
    }

    // MARK: Directories

    public func opendir(_ ino: InodeNumber, caller: Caller) throws -> OpenReply {
        switch try route(ino) {
        case .live: return try live.opendir(ino, caller: caller)
        case .directory: return snapshots.opendir()
        case .view(let v, let inner): return try v.fs.opendir(inner, caller: caller)
        }
    }

    public func readdir(
        _ ino: InodeNumber, fh: UInt64, offset: Int64, plus: Bool, fill: (DirectoryEntry) -> Bool
    ) throws {
        switch try route(ino) {
        case .live: try live.readdir(ino, fh: fh, offset: offset, plus: plus, fill: fill)
        case .directory: try snapshots.readdir(fh: fh, offset: offset, plus: plus, fill: fill)
        case .view(let v, let inner):
            try v.fs.readdir(inner, fh: fh, offset: offset, plus: plus) { e in
                let out = outer(e, v, inner: inner)
                guard fill(out) else {
                    if let entry = out.entry, entry.ino != 0 { _ = snapshots.inodes.forget(entry.ino, 1) }
                    return false
                }
                return true
            }
        }
    }

    public func releasedir(_ ino: InodeNumber, fh: UInt64) {
        switch try? route(ino) {
        case .live?: live.releasedir(ino, fh: fh)
        case .directory?: snapshots.releasedir(fh: fh)
        case .view(let v, let inner)?: v.fs.releasedir(inner, fh: fh)
        case nil: return
        }
    }

    public func fsyncdir(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws {
        guard case .live = try route(ino) else { return }
        try live.fsyncdir(ino, fh: fh, dataOnly: dataOnly)
    }

    public func statfs(_ ino: InodeNumber, _ st: UnsafeMutablePointer<statvfs>) throws {
        try live.statfs(InodeNumbers.root, st)
    }

    // MARK: Extended attributes and permissions

    public func setxattr(_ ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32, caller: Caller)
        throws
    {
        guard case .live = try route(ino) else { throw FSError(EROFS) }
        try live.setxattr(ino, name: name, value: value, flags: flags, caller: caller)
    }

    public func getxattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws -> [UInt8] {
        switch try route(ino) {
        case .live: return try live.getxattr(ino, name: name, caller: caller)
        case .directory: throw FSError(ENODATA)
        case .view(let v, let inner): return try v.fs.getxattr(inner, name: name, caller: caller)
        }
    }

    public func listxattr(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        switch try route(ino) {
        case .live: return try live.listxattr(ino, caller: caller)
        case .directory: return []
        case .view(let v, let inner): return try v.fs.listxattr(inner, caller: caller)
        }
    }

    public func removexattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws {
        guard case .live = try route(ino) else { throw FSError(EROFS) }
        try live.removexattr(ino, name: name, caller: caller)
    }

    public func access(_ ino: InodeNumber, mask: Int32, caller: Caller) throws {
        switch try route(ino) {
        case .live: try live.access(ino, mask: mask, caller: caller)
        case .directory:
            if mask & W_OK != 0 && caller.uid != live.defaultUid && caller.uid != 0 { throw FSError(EACCES) }
        case .view(let v, let inner):
            if mask & W_OK != 0 { throw FSError(EROFS) }
            try v.fs.access(inner, mask: mask, caller: caller)
        }
    }
}
