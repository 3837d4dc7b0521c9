import CFuse
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The mounted filesystem: what the low-level FUSE bridge calls (`LowLevelOperations`), in
/// inode numbers, over the namespace of a store.
///
/// Rooms: `Namespace` (names and records, in keys), `InodeTable` (what the kernel holds),
/// `OpenFileTable`/`OpenFile` (uncommitted writes), `HandleTable`, the control files
/// (`ControlFile`, answered before the store is asked) and the bridge (`FuseLowLevelBridge`,
/// the only C). This type routes each request to them and turns the answers into replies.
///
/// Kernel caching: the mount process is its store's only writer (the LOCK file makes sure),
/// so entries and attributes are cached for `timeout` and file pages are kept across opens.
public final class SliceFileSystem: LowLevelOperations {
    /// The embedded store (nil for a tree in an etcd cluster). While it is mounted, change it
    /// only through the filesystem.
    public let db: SliceDB?
    /// Limits, statistics and maintenance of the store (the control files).
    let control: any StoreControl
    let namespace: Namespace
    let inodes = InodeTable()
    let openFiles = OpenFileTable()
    let handles = HandleTable()
    let budget = DirtyBudget()
    let stagingSlots = StagingSlots()
    let writeBack: WriteBack
    let diskSpace: DiskSpace
    let controlResults = ControlResults()
    public let notifier: KernelNotifier? = KernelNotifier()
    public let requestCounts: FuseRequestCounts? = FuseRequestCounts()
    /// Inodes that lost their last name and wait for `purgeIfUnused` (their orphan markers are
    /// in the store, so a crash frees them at the next mount).
    let orphans = Locked<Set<InodeNumber>>([])
    let defaultUid: UInt32
    let defaultGid: UInt32
    /// Whether the root has the control files (a snapshot's view has none).
    let hasControlFiles: Bool
    /// The `.snapshots` directory listed at the root (set by `MountRouter`; nil: not listed).
    var snapshotsEntry: (@Sendable (_ plus: Bool) -> DirectoryEntry)? {
        get { snapshotsEntryBox.withLock { $0 } }
        set { snapshotsEntryBox.withLock { $0 = newValue } }
    }
    private let snapshotsEntryBox = Locked<(@Sendable (Bool) -> DirectoryEntry)?>(nil)
    /// The largest file: ext4's (16 TiB - 4 KiB), or the store's `maxValueSize` when smaller
    /// (`-o max_value_mb`). Sizes and writes past it answer EFBIG.
    var maxFileSize: UInt64 { min(FileContent.maxFileSize, UInt64(clamping: control.maxValueSize)) }

    /// Bytes of buffers per open file before a commit: `OpenFile.dirtyLimit`, or less when the
    /// store takes smaller batches (an etcd cluster's request limit), so every commit fits.
    let dirtyLimit: Int

    /// Whether opens keep the kernel's cached pages of a file: yes when this mount is the
    /// store's only writer; on a shared store every open drops them (close-to-open: an open
    /// after another mount's close reads what that close committed).
    var keepsPages: Bool { !namespace.store.sharedWithOtherMounts }

    /// Seconds the kernel may cache entries and attributes.
    static let timeout = 1.0

    /// The blob threshold `slice mount` opens a store with (`-o blob_kb` changes it): file
    /// chunks (64 KiB) and API values of 4 KiB or more live in blob files and the tree holds
    /// references, so renames, flushes and compactions never move file bytes.
    public static let defaultBlobThreshold = 4 << 10

    /// The blob file size `slice mount` opens a store with, and its space reserve
    /// (`Options.spaceReserve`): 16 MiB each. Why equal: on a full disk, garbage collection of
    /// the file with the fewest live values needs at most one file of room, which the reserve
    /// gives, so space that `rm` frees always comes back (before, 64 MiB files could need more
    /// room than the disk had). Smaller than the engine's 256 MiB also so that garbage
    /// collection works on smaller units.
    public static let defaultBlobFileSize = 16 << 20

    /// `writeBack`: hold files closed again soon after their last commit (`WriteBack`, the
    /// `writeback` mount option); off, every close commits.
    /// `controlFiles`: false for a read-only view of a snapshot (no `.stats` and friends).
    public convenience init(
        db: SliceDB, uid: UInt32 = getuid(), gid: UInt32 = getgid(), writeBack: Bool = false, controlFiles: Bool = true
    ) throws {
        let store = SliceStore(db: db)
        try self.init(
            store: store, control: store, db: db, uid: uid, gid: gid, writeBack: writeBack, controlFiles: controlFiles)
    }

    /// A filesystem over any store (`EtcdMount` makes one over a cluster).
    init(
        store: any FileStore, control: any StoreControl, db: SliceDB?, uid: UInt32, gid: UInt32, writeBack: Bool,
        controlFiles: Bool
    ) throws {
        self.db = db
        self.control = control
        hasControlFiles = controlFiles
        self.writeBack = WriteBack(enabled: writeBack)
        defaultUid = uid
        defaultGid = gid
        namespace = try Namespace(store: store, uid: uid, gid: gid)
        // Room for the header, the record and the entries a commit writes beside its chunks.
        let fitting = (store.maxBatchBytes - 64 << 10) / FileContent.chunkSize
        dirtyLimit = min(
            OpenFile.dirtyLimit, max(1, min(fitting, store.maxBatchOperations - 16)) * FileContent.chunkSize)
        diskSpace = DiskSpace(path: control.localDirectory)
    }

    /// A line in the daemon's log (its standard error: DATA_DIR/mount.log for `slice mount`),
    /// for what has no caller to return an error to.
    static func log(_ message: String) {
        let line = "slice: \(ISO8601DateFormatter().string(from: Date())): \(message)\n"
        _ = line.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }

    // MARK: Session

    public func mounted() {
        do {
            // Files unlinked while open when the last daemon died (on a shared tree, another
            // mount may still have them open: they stay).
            if !namespace.store.sharedWithOtherMounts {
                for ino in try namespace.orphans() { try namespace.purge(ino) }
            }
            // The root keeps its times across mounts.
            if try namespace.record(InodeNumbers.root) == nil && !control.isReadOnly {
                _ = try namespace.updateRecord(nil, ino: InodeNumbers.root) { _ in }
                inodes.invalidate(InodeNumbers.root)
            }
        } catch {
            SliceFileSystem.log("mount: \(error)")
        }
    }

    public func unmounting() {
        writeBack.stop()
        flushAll()
    }

    /// Writes back every open file, and the files the write-back holds (unmount, SIGTERM,
    /// `.sync`, `.flush`).
    public func flushAll() {
        _ = writeBack.takeAll()
        for f in openFiles.all {
            do { try commit(f) } catch { SliceFileSystem.log("write-back of inode \(f.ino) failed: \(error)") }
            if openFiles.retire(f) { purgeIfUnused(f.ino) }  // clean: no buffers to drop
        }
    }

    // MARK: Resolution

    /// Runs a lookup again when a concurrent change made two of its reads disagree
    /// (`Vanished`); a disagreement that lasts is damage (EIO).
    func retrying<R>(_ body: () throws -> R) throws -> R {
        for _ in 0..<16 {
            do { return try body() } catch is Vanished { continue }
        }
        SliceFileSystem.log("a record stays missing after 16 reads: reporting EIO")
        throw FSError(EIO)
    }

    /// The node an inode number stands for now.
    func node(_ ino: InodeNumber) throws -> Node { try retrying { try findNode(ino) } }

    private func findNode(_ ino: InodeNumber) throws -> Node {
        let known = inodes.cached(ino)
        if let n = known?.node { return n }
        let n = try resolveNode(ino)
        if let known { inodes.cache(ino, node: n, generation: known.generation) }
        return n
    }

    private func resolveNode(_ ino: InodeNumber) throws -> Node {
        if ino == InodeNumbers.root { return try namespace.root() }
        if let e = inodes.entry(ino), let n = try namespace.node(e.resolved), n.ino == ino { return n }
        // A file whose known name went (unlinked while open, or another of its hard links).
        if let n = try namespace.nodeByNumber(ino) { return n }
        // On a shared store another mount freed it: the kernel's number is stale, as on NFS.
        throw FSError(namespace.store.sharedWithOtherMounts ? ESTALE : ENOENT)
    }

    /// The path and key of `name` in the directory `parent`.
    func child(_ parent: InodeNumber, _ name: [UInt8]) throws -> (path: [UInt8], resolved: PathMapping.Resolved) {
        guard !name.isEmpty, !name.contains(0x2f) else { throw FSError(EINVAL) }
        guard name.count <= PathMapping.nameMax else { throw FSError(ENAMETOOLONG) }
        guard let e = inodes.entry(parent) else { throw FSError(ENOENT) }
        let path = (e.path == InodeTable.rootPath ? [] : e.path) + [0x2f] + name
        switch PathMapping.child(of: e.resolved, name: name) {
        case .success(let r):
            if r.key.count > Options.maxKeySize { throw FSError(ENAMETOOLONG) }
            return (path, r)
        case .failure(.nameTooLong): throw FSError(ENAMETOOLONG)
        case .failure(.notCanonical): throw FSError(EINVAL)
        case .failure(.notDirectory): throw FSError(ENOTDIR)
        case .failure(.controlName): throw FSError(EPERM)
        }
    }

    func parentResolved(_ parent: InodeNumber) throws -> PathMapping.Resolved {
        guard let e = inodes.entry(parent) else { throw FSError(ENOENT) }
        return e.resolved
    }

    /// The size of an open file's uncommitted content, if it has any.
    func attributes(_ n: Node) throws -> Attributes {
        let open = openFiles.file(n.ino)?.state.withLock { ($0.size, $0.modifiedAt, $0.pendingStoredBytes) }
        var size = open?.0
        if size == nil, n.content == .chunks, let known = inodes.cached(n.ino) {
            size = known.size
            if size == nil {
                let committed = try n.committedSize ?? namespace.content.size(n.ino)
                inodes.cache(n.ino, node: n, size: committed, generation: known.generation)
                size = committed
            }
        }
        var attrs = try namespace.attributes(n, openSize: size)
        if let written = open?.1 {
            // Written, not committed yet: the write's time, as the commit will record it.
            attrs.mtime = written
            attrs.ctime = max(attrs.ctime, written)
        }
        if let pending = open?.2, pending != 0, n.content == .chunks, let rec = n.record {
            // And the blocks the commit will add (`du` of a file being written, and of one just
            // closed: the kernel keeps this answer for the attribute timeout).
            attrs.blocks = (UInt64(max(0, Int64(rec.blocks) + pending)) + 4095) / 4096 * 8
        }
        return attrs
    }

    /// An entry reply for `n` found at `path`, counted as one lookup.
    /// `made`: `n` was just made by this request (create, mkdir, mknod, symlink), so no other
    /// request can have changed it yet: it is cached, and the next requests on it (a WRITE, a
    /// GETATTR) skip resolving it again.
    func reply(_ n: Node, path: [UInt8], resolved: PathMapping.Resolved, made: Bool = false) throws -> EntryReply {
        reply(n, attributes: try attributes(n), path: path, resolved: resolved, made: made)
    }

    /// The same, with the attributes already worked out.
    func reply(
        _ n: Node, attributes attrs: Attributes, path: [UInt8], resolved: PathMapping.Resolved, made: Bool = false
    ) -> EntryReply {
        inodes.remember(n.ino, path: path, resolved: resolved)
        if made, let known = inodes.cached(n.ino), known.node == nil {
            inodes.cache(n.ino, node: n, generation: known.generation)
        }
        return EntryReply(
            ino: n.ino, attributes: attrs, attrTimeout: SliceFileSystem.timeout, entryTimeout: SliceFileSystem.timeout)
    }

    /// Whether `name` in `parent` is reserved at the root (a control file, `.snapshots`).
    func isControlName(_ parent: InodeNumber, _ name: [UInt8]) -> Bool {
        parent == InodeNumbers.root && PathMapping.controlNames.contains(name)
    }

    // MARK: Lookups and attributes

    /// The root's entry, not counted (the root is never forgotten): a snapshot view's root
    /// as `.snapshots/NAME`.
    func lookupRoot() throws -> EntryReply {
        let n = try node(InodeNumbers.root)
        return EntryReply(
            ino: n.ino, attributes: try attributes(n), attrTimeout: SliceFileSystem.timeout,
            entryTimeout: SliceFileSystem.timeout)
    }

    public func lookup(parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        if isControlName(parent, name) {
            guard hasControlFiles, let kind = ControlFile.Kind(name: name) else {
                return .negative(timeout: SliceFileSystem.timeout)
            }
            return controlEntry(kind)
        }
        let (path, r) = try child(parent, name)
        let (found, attrs) = try retrying {
            try unchanged { generation, first -> (Node?, Attributes?) in
                let found: Node?
                if first, let known = namespace.lookups.node(at: r, generation: generation) {
                    found = known
                } else {
                    found = try namespace.node(r) { ino in first ? inodes.currentNode(ino) : nil }
                    namespace.lookups.keep(found, at: r, generation: generation)
                }
                return (found, try found.map { try attributes($0) })
            }
        }
        guard let n = found, let attrs else { return .negative(timeout: SliceFileSystem.timeout) }
        return reply(n, attributes: attrs, path: path, resolved: r)
    }

    /// Runs `body` again (at most three more times, not from caches) when a write landed while
    /// it ran. Why: an answer read from the store (or a cache) before a commit and completed
    /// after the committing file left the open-file table would give the kernel a size from
    /// before the commit, and the kernel, whose request went out after the write, would
    /// believe it (an O_APPEND by another process then overwrites the last append).
    func unchanged<R>(_ body: (_ generation: UInt64, _ first: Bool) throws -> R) rethrows -> R {
        var first = true
        for _ in 0..<3 {
            let generation = namespace.store.changeCount
            let result = try body(generation, first)
            if namespace.store.changeCount == generation { return result }
            first = false
        }
        return try body(namespace.store.changeCount, false)
    }

    public func forget(_ ino: InodeNumber, lookups: UInt64) {
        if inodes.forget(ino, lookups) {
            openFiles.forgotten(ino)
            purgeIfUnused(ino)
        }
    }

    public func getattr(_ ino: InodeNumber, fh: UInt64?, caller: Caller) throws -> (Attributes, timeout: Double) {
        if let kind = ControlFile.Kind(ino: ino) { return (controlAttributes(kind), 0) }
        return (try retrying { try unchanged { _, _ in try attributes(try node(ino)) } }, SliceFileSystem.timeout)
    }

    public func setattr(_ ino: InodeNumber, _ changes: AttributeChanges, fh: UInt64?, caller: Caller) throws -> (
        Attributes, timeout: Double
    ) {
        if let kind = ControlFile.Kind(ino: ino) {
            // `echo 1 > .flush` truncates first: nothing to truncate, nothing else may change.
            guard changes.mode == nil && changes.uid == nil && changes.gid == nil else { throw FSError(EPERM) }
            return (controlAttributes(kind), 0)
        }
        var n = try node(ino)
        if let size = changes.size {
            switch n.kind {
            case .directory: throw FSError(EISDIR)
            case .file: try truncate(n, to: size)
            default: throw FSError(EINVAL)
            }
        }
        if let f = openFiles.file(ino), changes.mtime != nil { try commit(f) }
        defer { inodes.invalidate(ino) }
        let hasRecordChange =
            changes.mode != nil || changes.uid != nil || changes.gid != nil || changes.atime != nil
            || changes.mtime != nil || changes.killSetID
        if hasRecordChange {
            let now = Timestamp.now
            n = try namespace.updateRecord(inodes.entry(ino)?.resolved, ino: ino) { rec in
                if let mode = changes.mode { rec.mode = UInt32(mode) & 0o7777 }
                if let uid = changes.uid { rec.uid = uid }
                if let gid = changes.gid { rec.gid = gid }
                if changes.killSetID {
                    rec.mode &= ~UInt32(Glibc.S_ISUID)
                    if rec.mode & UInt32(S_IXGRP) != 0 { rec.mode &= ~UInt32(Glibc.S_ISGID) }
                }
                switch changes.atime {
                case .now: rec.atime = now
                case .set(let t): rec.atime = t
                case nil: break
                }
                switch changes.mtime {
                case .now: rec.mtime = now
                case .set(let t): rec.mtime = t
                case nil: break
                }
            }
        } else {
            n = try node(ino)
        }
        return (try attributes(n), SliceFileSystem.timeout)
    }

    public func readlink(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        let n = try node(ino)
        guard n.kind == .symlink, let rec = n.record else { throw FSError(EINVAL) }
        return rec.target
    }

    // MARK: Names

    private func make(
        _ kind: InodeRecord.Kind, parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64 = 0,
        target: [UInt8] = [], caller: Caller
    ) throws -> EntryReply {
        if isControlName(parent, name) { throw FSError(EEXIST) }
        let (path, r) = try child(parent, name)
        let n = try namespace.create(
            kind, at: r, in: try parentResolved(parent), mode: mode, rdev: rdev, target: target, caller: caller)
        inodes.invalidate(parent)
        return try reply(n, path: path, resolved: r, made: true)
    }

    public func mknod(parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64, caller: Caller) throws
        -> EntryReply
    {
        guard let kind = InodeRecord.Kind(typeBits: mode), kind != .directory, kind != .symlink else {
            throw FSError(EINVAL)
        }
        let isDevice = kind == .characterDevice || kind == .blockDevice
        return try make(kind, parent: parent, name: name, mode: mode, rdev: isDevice ? rdev : 0, caller: caller)
    }

    public func mkdir(parent: InodeNumber, name: [UInt8], mode: mode_t, caller: Caller) throws -> EntryReply {
        try make(.directory, parent: parent, name: name, mode: mode, caller: caller)
    }

    public func symlink(target: [UInt8], parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        guard target.count < Int(PATH_MAX) else { throw FSError(ENAMETOOLONG) }
        return try make(.symlink, parent: parent, name: name, mode: 0o777, target: target, caller: caller)
    }

    public func link(_ ino: InodeNumber, newParent: InodeNumber, newName: [UInt8], caller: Caller) throws
        -> EntryReply
    {
        if isControlName(newParent, newName) || ControlFile.Kind(ino: ino) != nil {
            throw FSError(EPERM)
        }
        let (path, r) = try child(newParent, newName)
        let target = try node(ino)
        let targetResolved: PathMapping.Resolved
        if let e = inodes.entry(ino), try namespace.node(e.resolved)?.ino == ino {
            targetResolved = e.resolved
        } else if !target.key.isEmpty {
            targetResolved = PathMapping.Resolved(key: target.key, isSelfEntry: false, isRoot: false)
        } else {
            // Known only by number (all names gone): POSIX lets link fail here.
            throw FSError(ENOENT)
        }
        let n = try namespace.link(r, to: targetResolved, in: try parentResolved(newParent))
        inodes.invalidate(ino, newParent)
        return try reply(n, path: path, resolved: r)
    }

    /// Frees an inode that lost its last name now, or marks its open file to do it at the
    /// last release.
    func dropped(_ lost: Namespace.Unlinked?) {
        guard let lost, lost.orphaned else { return }
        orphans.withLock { _ = $0.insert(lost.ino) }
        purgeIfUnused(lost.ino)
    }

    /// Frees an inode without names once nothing holds it: no open handle, and no lookup the
    /// kernel still holds (a path walk that found it may still open it, as on a local
    /// filesystem). Called when either goes away.
    func purgeIfUnused(_ ino: InodeNumber) {
        guard openFiles.file(ino) == nil, !inodes.isKnown(ino) else { return }
        guard orphans.withLock({ $0.remove(ino) }) != nil else { return }
        do { try namespace.purge(ino) } catch {
            SliceFileSystem.log("freeing inode \(ino): \(error) (freed at the next mount)")
        }
    }

    public func unlink(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        if isControlName(parent, name) { throw FSError(EPERM) }
        let (_, r) = try child(parent, name)
        // A file nothing has open is freed in the unlink's own batch; the mark that keeps a
        // racing OPEN out is taken back if that batch fails.
        var claimed: InodeNumber?
        let lost: Namespace.Unlinked
        do {
            lost = try namespace.unlink(r, in: try parentResolved(parent)) { ino in
                guard openFiles.claimUnused(ino) else { return false }
                claimed = ino
                return true
            }
        } catch {
            if let claimed { openFiles.unclaim(claimed) }
            throw error
        }
        // Kept only while the kernel holds the number (FORGET takes it back).
        if let claimed, !lost.freed || !inodes.isKnown(claimed) { openFiles.unclaim(claimed) }
        inodes.invalidate(parent, lost.ino)
        dropped(lost)
    }

    public func rmdir(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        if isControlName(parent, name) { throw FSError(ENOTDIR) }
        let (_, r) = try child(parent, name)
        let ino = try namespace.rmdir(r, in: try parentResolved(parent))
        inodes.invalidate(parent, ino)
    }

    public func rename(
        parent: InodeNumber, name: [UInt8], newParent: InodeNumber, newName: [UInt8], flags: UInt32, caller: Caller
    ) throws {
        if isControlName(parent, name) || isControlName(newParent, newName) {
            throw FSError(EPERM)
        }
        // RENAME_WHITEOUT (overlayfs) and unknown flags: refused, not ignored.
        guard flags & ~(slice_rename_noreplace | slice_rename_exchange) == 0,
            flags != slice_rename_noreplace | slice_rename_exchange
        else { throw FSError(EINVAL) }
        let (fromPath, from) = try child(parent, name)
        let (toPath, to) = try child(newParent, newName)
        let renamed: Namespace.Renamed?
        do {
            renamed = try namespace.rename(
                from, in: try parentResolved(parent), to: to, in: try parentResolved(newParent), flags: flags)
        } catch  where FSError.errno(of: error) == EFBIG {
            // A directory whose keys do not fit in one change of the store (an etcd cluster's
            // limits): EXDEV, as overlayfs answers, so `mv` moves it file by file instead.
            throw FSError(EXDEV)
        }
        guard let done = renamed else { return }
        inodes.invalidate(parent, newParent, done.moved.ino)
        if let target = done.target { inodes.invalidate(target.ino) }
        if flags & slice_rename_exchange != 0 {
            inodes.exchanged(fromPath, toPath)
        } else if done.moved.isDirectory {
            inodes.renamed(from: fromPath, to: toPath)
        } else {
            inodes.moved(done.moved.ino, to: toPath, resolved: to)
        }
        dropped(done.lost)
    }

    // MARK: Extended attributes

    /// Largest value, name and total size of one inode's attributes (Linux's XATTR_SIZE_MAX
    /// and XATTR_NAME_MAX; the total keeps a record small enough to rewrite on every change).
    static let xattrValueMax = 65536
    static let xattrNameMax = 255
    static let xattrTotalMax = 256 << 10

    public func setxattr(_ ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32, caller: Caller)
        throws
    {
        if ControlFile.Kind(ino: ino) != nil { throw FSError(EPERM) }
        guard !name.isEmpty, name.count <= SliceFileSystem.xattrNameMax else { throw FSError(ERANGE) }
        // POSIX ACLs (and other system.* names) are not supported; refusing them makes cp -a
        // and rsync fall back to chmod. Namespaces Linux does not know are refused as by ext4.
        guard
            ["user.", "trusted.", "security."].contains(where: { name.starts(with: Array($0.utf8)) })
        else { throw FSError(EOPNOTSUPP) }
        guard value.count <= SliceFileSystem.xattrValueMax else { throw FSError(E2BIG) }
        let bytes = Array(value)
        _ = try namespace.updateRecord(inodes.entry(ino)?.resolved, ino: ino) { rec in
            let exists = rec.xattrs[name] != nil
            if flags & slice_xattr_create != 0 && exists { throw FSError(EEXIST) }
            if flags & slice_xattr_replace != 0 && !exists { throw FSError(ENODATA) }
            rec.xattrs[name] = bytes
            let total = rec.xattrs.reduce(0) { $0 + $1.key.count + $1.value.count }
            if total > SliceFileSystem.xattrTotalMax { throw FSError(ENOSPC) }
        }
        inodes.invalidate(ino)
    }

    public func getxattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws -> [UInt8] {
        if ControlFile.Kind(ino: ino) != nil { throw FSError(ENODATA) }
        guard let value = try node(ino).record?.xattrs[name] else { throw FSError(ENODATA) }
        return value
    }

    public func listxattr(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        if ControlFile.Kind(ino: ino) != nil { return [] }
        var out: [UInt8] = []
        let names = try node(ino).record?.xattrs.keys.sorted { $0.lexicographicallyPrecedes($1) } ?? []
        for name in names {
            out.append(contentsOf: name)
            out.append(0)
        }
        return out
    }

    public func removexattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws {
        if ControlFile.Kind(ino: ino) != nil { throw FSError(ENODATA) }
        guard try node(ino).record?.xattrs[name] != nil else { throw FSError(ENODATA) }
        _ = try namespace.updateRecord(inodes.entry(ino)?.resolved, ino: ino) { rec in
            guard rec.xattrs.removeValue(forKey: name) != nil else { throw FSError(ENODATA) }
        }
        inodes.invalidate(ino)
    }

    // MARK: Permissions and the filesystem

    /// `access(2)`, asked only when the kernel does not check modes itself (a mount without
    /// `default_permissions`): owner, group and other bits as `generic_permission` applies
    /// them, and for uid 0 every access but executing a file with no execute bit.
    public func access(_ ino: InodeNumber, mask: Int32, caller: Caller) throws {
        let wanted = UInt32(mask & (R_OK | W_OK | X_OK))
        if let kind = ControlFile.Kind(ino: ino) {
            if wanted & UInt32(X_OK) != 0 { throw FSError(EACCES) }
            if wanted & UInt32(W_OK) != 0 && !mayOpenControl(kind, uid: caller.uid, writing: true) {
                throw FSError(EACCES)
            }
            if wanted & UInt32(R_OK) != 0 && !mayOpenControl(kind, uid: caller.uid, writing: false) {
                throw FSError(EACCES)
            }
            return
        }
        let n = try node(ino)
        let rec = n.record ?? namespace.defaultRecord(n.kind)
        if caller.uid == 0 {
            if wanted & UInt32(X_OK) != 0 && !n.isDirectory && rec.mode & 0o111 == 0 { throw FSError(EACCES) }
            return
        }
        let bits = caller.uid == rec.uid ? rec.mode >> 6 : caller.gid == rec.gid ? rec.mode >> 3 : rec.mode
        if wanted & ~bits & 7 != 0 { throw FSError(EACCES) }
    }

    public func statfs(_ ino: InodeNumber, _ st: UnsafeMutablePointer<statvfs>) throws {
        try control.statfs(st)
        st.pointee.f_namemax = UInt(PathMapping.nameMax)
    }

    // MARK: Directories

    public func opendir(_ ino: InodeNumber, caller: Caller) throws -> OpenReply {
        let n = try node(ino)
        guard n.isDirectory else { throw FSError(ENOTDIR) }
        let path = inodes.entry(ino)?.path ?? InodeTable.rootPath
        return OpenReply(fh: handles.add(.directory(DirectoryHandle(path: path))))
    }

    public func readdir(
        _ ino: InodeNumber, fh: UInt64, offset: Int64, plus: Bool, fill: (DirectoryEntry) -> Bool
    ) throws {
        guard case .directory(let dir) = handles.handle(fh) else { throw FSError(EBADF) }
        let listing = try dir.listing.withLock { listing -> DirectoryListing in
            if offset == 0 || listing == nil {
                let n = try node(ino)
                var first = DirectoryListing()
                first.add([0x2e], S_IFDIR, ino: ino)
                first.add([0x2e, 0x2e], S_IFDIR, ino: InodeNumbers.root)
                if ino == InodeNumbers.root && hasControlFiles {
                    for kind in ControlFile.Kind.allCases {
                        first.add(Array(kind.rawValue.utf8), S_IFREG, ino: kind.ino)
                    }
                    if let snapshots = snapshotsEntry?(false) { first.add(snapshots.name, S_IFDIR, ino: snapshots.ino) }
                }
                listing = try namespace.listing(n, resolved: inodes.entry(ino)?.resolved, startingWith: first)
            }
            return listing!
        }
        let base = dir.path == InodeTable.rootPath ? [] : dir.path
        try listing.forEach(from: Int(offset)) { name, mode, childIno, i in
            var entry = DirectoryEntry(name: Array(name), ino: childIno, type: mode, nextOffset: Int64(i + 1))
            var remember: (path: [UInt8], resolved: PathMapping.Resolved)?
            if plus && i >= 2 {
                if let kind = ControlFile.Kind(ino: childIno), ino == InodeNumbers.root {
                    entry.entry = controlEntry(kind)
                } else if ino == InodeNumbers.root, let snapshots = snapshotsEntry, childIno == snapshots(false).ino {
                    entry.entry = snapshots(true).entry
                } else {
                    let path = base + [0x2f] + Array(name)
                    guard case .success(let r) = PathMapping.resolve(path),
                        let n = try retrying({ try namespace.node(r) })
                    else {
                        return true  // gone since the listing was made
                    }
                    entry.ino = n.ino
                    entry.type = n.kind.typeBits
                    entry.entry = EntryReply(
                        ino: n.ino, attributes: try retrying { try attributes(n) },
                        attrTimeout: SliceFileSystem.timeout,
                        entryTimeout: SliceFileSystem.timeout)
                    remember = (path, r)
                }
            }
            guard fill(entry) else { return false }
            if let remember { inodes.remember(entry.ino, path: remember.path, resolved: remember.resolved) }
            return true
        }
    }

    public func releasedir(_ ino: InodeNumber, fh: UInt64) { handles.remove(fh) }

    public func fsyncdir(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws { try control.sync() }
}
