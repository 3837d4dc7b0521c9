import CFuse
import Foundation
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The filesystem view of a store: every operation the FUSE bridge forwards, in terms of keys.
///
/// Mapping: see `PathMapping`. File content is the `.user` value of the key; attributes live in
/// `FSKeyspace` records written in the same `WriteBatch` as the content, so a change is atomic.
/// Directories are implicit in the keys below them; `mkdir` records a directory so that it
/// exists while empty, and removing the last entry of a directory records it as well, so a
/// directory never vanishes under `rm -r`.
///
/// Threads: FUSE calls come from many threads at once. `metaLock` serialises every change to
/// the namespace or to attribute records (create, mkdir, unlink, rename, chmod, commit of file
/// content...); reads take no lock (the engine gives each read a consistent view).
/// Every method returns 0 or a negated errno, as FUSE expects.
public final class SliceFileSystem: @unchecked Sendable {
    /// The store. While it is mounted, change it only through the filesystem: the kernel caches
    /// attributes and names for a second and `nodeCache` until the next change it makes, both
    /// on the promise that the mount is the store's only writer.
    public let db: SliceDB
    let mountTime = Timestamp.now
    let defaultUid: UInt32
    let defaultGid: UInt32
    /// Serialises namespace and record changes (see the type's doc). It guards no value of its
    /// own; the byte is there because ThreadSanitizer reports every use of a `Locked<Void>` as
    /// a race (its access check of the zero-size value lands on the object's header, which
    /// other threads read before they lock: seen on the mount tests under TSan).
    private let metaLock = Locked<UInt8>(0)
    /// Directories seen to have a record in `FSKeyspace.nodes`, so that `keepParent` does not
    /// read the same parent's record for every unlink or rename in it (a store lookup each,
    /// ~3% of a mass unlink's daemon time). Only deleting a node record can make an entry
    /// wrong, and the operations that do (rmdir, unlink of a symlink, rename of or over a
    /// directory or symlink) clear the whole set; all of them and `keepParent` run under
    /// `metaLock`, so no lookup races a deletion.
    private let recordedDirectories = Locked<Set<[UInt8]>>([])
    private let openFiles = Locked<[[UInt8]: OpenFile]>([:])
    private let handles = Locked<(next: UInt64, table: [UInt64: Handle])>((1, [:]))
    let controlResults = ControlResults()
    let nodeCache = NodeCache()
    let deferredSpace: DeferredSpace

    public init(db: SliceDB, uid: UInt32 = getuid(), gid: UInt32 = getgid()) {
        self.db = db
        deferredSpace = DeferredSpace(path: db.path)
        defaultUid = uid
        defaultGid = gid
    }

    var maxFileSize: Int { db.options.maxValueSize }

    /// The blob threshold `slice mount` opens a store with (`-o blob_kb` changes it): file
    /// content of 4 KiB or more lives in blob files and the tree holds a reference, so a
    /// rename moves 20 bytes instead of the file, and flushes and compactions never rewrite
    /// file bytes. Against the engine's 32 KiB default (`Benchmarks/fs_daemon_cpu.sh`,
    /// MODE=sequence, two A/Bs of alternating runs, 4 KiB files): renames 37-40% faster,
    /// creates 7-35%, cold reads and empty files unchanged within the machine's noise.
    public static let defaultBlobThreshold = 4 << 10

    /// The blob file size `slice mount` opens a store with: 64 MiB, a quarter of the engine's
    /// default. Deleted files' bytes in the blob file still being appended to come back only
    /// when it is sealed (full, a `.compact`, or unmount), so this bounds what `rm` leaves
    /// behind; 16,000 files of 4 KiB still share one file.
    public static let defaultBlobFileSize = 64 << 20

    // MARK: Errors

    static func errno(_ error: Error) -> Int32 {
        guard let e = error as? SliceError else { return -EIO }
        switch e.code {
        case .noSpace: return -ENOSPC
        case .invalidArgument: return -EINVAL
        case .readOnly: return -EROFS
        case .corruption, .ioError, .closed, .locked, .unsupportedFormat: return -EIO
        }
    }

    /// Runs `body`, mapping thrown engine errors to a negated errno.
    @inline(__always)
    func guarded(_ body: () throws -> Int32) -> Int32 {
        do { return try body() } catch { return SliceFileSystem.errno(error) }
    }

    struct FSError: Error {
        let code: Int32
        init(_ code: Int32) { self.code = code }
    }

    func resolve(_ path: UnsafePointer<CChar>) throws -> PathMapping.Resolved {
        let bytes = UnsafeRawBufferPointer(start: path, count: strlen(path))
        switch PathMapping.resolve(Array(bytes)) {
        case .success(let r):
            if !r.isRoot && r.key.count > SliceKV.Options.maxKeySize { throw FSError(-ENAMETOOLONG) }
            return r
        case .failure(.nameTooLong): throw FSError(-ENAMETOOLONG)
        case .failure(.notCanonical): throw FSError(-EINVAL)
        case .failure(.notDirectory), .failure(.controlName): throw FSError(-ENOTDIR)
        }
    }

    /// A line in the daemon's log (its standard error: DATA_DIR/mount.log for `slice mount`),
    /// for what has no caller to return an error to.
    static func log(_ message: String) {
        let line = "slice: \(ISO8601DateFormatter().string(from: Date())): \(message)\n"
        _ = line.withCString { Glibc.write(STDERR_FILENO, $0, strlen($0)) }
    }

    func run(_ body: () throws -> Int32) -> Int32 {
        do { return try body() } catch let e as FSError { return e.code } catch { return SliceFileSystem.errno(error) }
    }

    /// Whether `uid` may open a control file as its mode says (`ControlFile.Kind.mode`): the
    /// files that act only by the mounting user and root, as the kernel allows a 0600 file
    /// owned by that user; the others read-only, by anyone.
    func mayOpenControl(_ kind: ControlFile.Kind, uid: uid_t, writing: Bool) -> Bool {
        guard kind.isWritable else { return !writing }
        return uid == defaultUid || uid == 0
    }

    static func controlKind(_ path: UnsafePointer<CChar>) -> ControlFile.Kind? {
        guard path[0] == 0x2f, path[1] == 0x2e else { return nil }
        return ControlFile.Kind(rawValue: String(cString: path + 1))
    }

    // MARK: Lookups

    /// What a key is in the namespace.
    enum Node {
        case file(NodeRecord?, size: Int)
        case directory(NodeRecord?)
        case symlink(NodeRecord)
    }

    func record(_ key: [UInt8], _ keyspace: Keyspace) throws -> NodeRecord? {
        // The directory `/%` (keys starting with "/") has the empty key, which holds nothing.
        if key.isEmpty { return nil }
        guard let bytes = try db.get(key, keyspace: keyspace) else { return nil }
        guard let r = NodeRecord.decode(bytes) else { throw FSError(-EIO) }
        return r
    }

    /// Whether any key (content or node) lies under `prefix`.
    func hasChildren(_ prefix: [UInt8]) throws -> Bool {
        try db.containsKey(withPrefix: prefix, keyspace: .user)
            || db.containsKey(withPrefix: prefix, keyspace: FSKeyspace.nodes)
    }

    /// A file's size: from its staging when it is open, else from the store without reading the value.
    func fileSize(_ key: [UInt8]) throws -> Int? {
        if key.isEmpty { return nil }
        if let open = openFiles.withLock({ $0[key] }), let n = open.state.withLock({ $0.stagedSize }) {
            return Int(n)
        }
        return try db.valueSize(key).map { Int($0) }
    }

    /// Resolves a path to its node, or nil when nothing is there (from `nodeCache` when
    /// nothing changed since it was last asked).
    func node(_ r: PathMapping.Resolved) throws -> Node? {
        let generation = nodeCache.generation
        if let known = nodeCache.lookup(r) { return known }
        let n = try loadNode(r)
        nodeCache.store(r, n, generation: generation)
        return n
    }

    private func loadNode(_ r: PathMapping.Resolved) throws -> Node? {
        if r.isRoot { return .directory(try record([UInt8]("root".utf8), FSKeyspace.root)) }
        if r.isPieceDirectory { return try hasChildren(r.childPrefix) ? .directory(nil) : nil }
        if r.isSelfEntry {
            // The value of a key that is also a directory: one with keys below it, or one with
            // a directory record (emptied through the mount; listings show `%=` then too).
            guard let size = try fileSize(r.key) else { return nil }
            if try !hasChildren(r.childPrefix) {
                guard let n = try record(r.key, FSKeyspace.nodes), n.kind == .directory else { return nil }
            }
            return .file(try record(r.key, FSKeyspace.fileAttributes), size: size)
        }
        if let n = try record(r.key, FSKeyspace.nodes) {
            return n.kind == .symlink ? .symlink(n) : .directory(n)
        }
        if let size = try r.key.isEmpty ? nil : fileSize(r.key) {
            if try hasChildren(r.childPrefix) { return .directory(nil) }
            return .file(try record(r.key, FSKeyspace.fileAttributes), size: size)
        }
        if try hasChildren(r.childPrefix) { return .directory(nil) }
        return nil
    }

    /// Attributes of a node that has no record (written through the API, or implicit).
    func defaultRecord(_ kind: NodeRecord.Kind) -> NodeRecord {
        NodeRecord(
            kind: kind, mode: kind == .directory ? 0o755 : 0o644, uid: defaultUid, gid: defaultGid, time: mountTime)
    }

    func fill(_ st: UnsafeMutablePointer<stat>, _ node: Node) {
        memset(st, 0, MemoryLayout<stat>.size)
        var rec: NodeRecord
        switch node {
        case .file(let r, let size):
            rec = r ?? defaultRecord(.file)
            st.pointee.st_mode = S_IFREG | mode_t(rec.mode)
            st.pointee.st_size = off_t(size)
            st.pointee.st_nlink = 1
        case .directory(let r):
            rec = r ?? defaultRecord(.directory)
            st.pointee.st_mode = S_IFDIR | mode_t(rec.mode)
            // 1: "subdirectory count unknown", so find(1) does not skip subdirectories.
            st.pointee.st_nlink = 1
        case .symlink(let r):
            rec = r
            st.pointee.st_mode = S_IFLNK | mode_t(rec.mode)
            st.pointee.st_size = off_t(r.target.count)
            st.pointee.st_nlink = 1
        }
        st.pointee.st_uid = rec.uid
        st.pointee.st_gid = rec.gid
        st.pointee.st_atim = rec.atime.timespec
        st.pointee.st_mtim = rec.mtime.timespec
        st.pointee.st_ctim = rec.ctime.timespec
        st.pointee.st_blksize = 4096
        st.pointee.st_blocks = blkcnt_t((st.pointee.st_size + 511) / 512)
    }

    /// Applies a batch to the store. Every change SliceFS makes goes through here (or ends
    /// with `nodeCache.invalidate()`), so that no cached node outlives it.
    func apply(_ batch: WriteBatch, sync: Bool = false) throws {
        defer { nodeCache.invalidate() }
        try db.write(batch, sync: sync)
    }

    // MARK: Attributes

    /// The open file a path names, if it is open through that plain path with its record cached.
    func openPlainFile(_ r: PathMapping.Resolved) -> OpenFile? {
        if r.isRoot || r.isSelfEntry || r.isPieceDirectory { return nil }
        return openFiles.withLock { $0[r.key] }
    }

    /// An open file's attributes from its cached record, without a lookup in the store (false
    /// when the record is not cached). `byHandle`: asked through a handle, which may have
    /// outlived the file's name.
    private func cachedStat(_ f: OpenFile, _ st: UnsafeMutablePointer<stat>, byHandle: Bool = false) throws -> Bool {
        let hit = f.state.withLock { s -> (NodeRecord, UInt64?, [UInt8])? in
            guard let cached = s.record, byHandle ? s.plain || s.unlinked : s.plain && !s.unlinked else { return nil }
            var rec = s.applyingDrops(to: cached)
            if let m = s.mtime {
                rec.mtime = m
                rec.ctime = m
            }
            return (rec, s.stagedSize, s.key)
        }
        guard let (rec, staged, key) = hit, let size = try staged ?? db.valueSize(key) else { return false }
        fill(st, .file(rec, size: Int(size)))
        return true
    }

    /// `stat`; `fh` is the handle when the kernel asks about an open file, and the only way to
    /// it once the file is unlinked (libfuse passes no path then).
    public func getattr(_ path: UnsafePointer<CChar>?, _ st: UnsafeMutablePointer<stat>, fh: UInt64? = nil) -> Int32 {
        guard let path else {
            guard let fh, case .file(let f, _, _) = handle(fh) else { return -ENOENT }
            return run { try cachedStat(f, st, byHandle: true) ? 0 : -ENOENT }
        }
        if let kind = SliceFileSystem.controlKind(path) {
            memset(st, 0, MemoryLayout<stat>.size)
            st.pointee.st_mode = S_IFREG | kind.mode
            st.pointee.st_nlink = 1
            st.pointee.st_uid = defaultUid
            st.pointee.st_gid = defaultGid
            st.pointee.st_mtim = Timestamp.now.timespec
            return 0
        }
        return run {
            if let fh, case .file(let f, _, _) = handle(fh), try cachedStat(f, st, byHandle: true) { return 0 }
            let r = try resolve(path)
            if let f = openPlainFile(r), try cachedStat(f, st) { return 0 }
            guard var n = try node(r) else { return -ENOENT }
            if case .file(let rec, let size) = n, let open = openFiles.withLock({ $0[r.key] }),
                let mtime = open.state.withLock({ $0.mtime })
            {
                var rec = rec ?? defaultRecord(.file)
                rec.mtime = mtime
                rec.ctime = mtime
                n = .file(rec, size: size)
            }
            fill(st, n)
            return 0
        }
    }

    /// `access(2)`, asked only when the kernel does not check modes itself (a mount without
    /// `default_permissions`, which `slice mount` uses only when root alone can reach it): the
    /// owner, group and other bits as `generic_permission` applies them, and for uid 0 every
    /// access but executing a file with no execute bit.
    public func access(_ path: UnsafePointer<CChar>, _ mask: Int32, uid: uid_t, gid: gid_t) -> Int32 {
        if let kind = SliceFileSystem.controlKind(path) {
            if mask & X_OK != 0 { return -EACCES }
            if mask & W_OK != 0 && !mayOpenControl(kind, uid: uid, writing: true) { return -EACCES }
            return mask & R_OK != 0 && !mayOpenControl(kind, uid: uid, writing: false) ? -EACCES : 0
        }
        return run {
            let r = try resolve(path)
            guard let n = try node(r) else { return -ENOENT }
            var isFile = false
            if case .file = n { isFile = true }
            let rec = recordOf(n) ?? defaultRecord(isFile ? .file : .directory)
            let wanted = UInt32(mask & (R_OK | W_OK | X_OK))
            if uid == 0 {
                return wanted & UInt32(X_OK) != 0 && isFile && rec.mode & 0o111 == 0 ? -EACCES : 0
            }
            let bits = uid == rec.uid ? rec.mode >> 6 : gid == rec.gid ? rec.mode >> 3 : rec.mode
            return wanted & ~bits & 7 == 0 ? 0 : -EACCES
        }
    }

    /// Read-modify-write of a node's record. Creates a record with defaults for nodes that had
    /// none (API-written files, implicit directories).
    private func updateRecord(_ path: UnsafePointer<CChar>, _ change: (inout NodeRecord) throws -> Void) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -EPERM }
        return run {
            let r = try resolve(path)
            if !r.isRoot && r.key.isEmpty { return -EPERM }  // `/%` cannot carry attributes
            return try metaLock.withLock { _ in
                guard let n = try node(r) else { return -ENOENT }
                var batch = WriteBatch()
                let now = Timestamp.now
                switch n {
                case .file(let rec, _):
                    var rec = rec ?? defaultRecord(.file)
                    if let f = openFiles.withLock({ $0[r.key] }) {
                        // A pending privilege drop belongs to the writes before this change.
                        rec = f.state.withLock { s in
                            defer { (s.dropSetID, s.dropCapability) = (false, false) }
                            return s.applyingDrops(to: rec)
                        }
                    }
                    try change(&rec)
                    rec.ctime = now
                    batch.put(r.key, rec.encode(), keyspace: FSKeyspace.fileAttributes)
                    try apply(batch)
                    if let f = openFiles.withLock({ $0[r.key] }) {
                        f.state.withLock { s in if s.plain { s.record = rec } }
                    }
                    return 0
                case .directory(let rec):
                    var rec =
                        rec
                        ?? defaultRecord(.directory)
                    try change(&rec)
                    rec.ctime = now
                    if r.isRoot {
                        batch.put(Array("root".utf8), rec.encode(), keyspace: FSKeyspace.root)
                    } else {
                        batch.put(r.key, rec.encode(), keyspace: FSKeyspace.nodes)
                    }
                case .symlink(var rec):
                    try change(&rec)
                    rec.ctime = now
                    batch.put(r.key, rec.encode(), keyspace: FSKeyspace.nodes)
                }
                try apply(batch)
                return 0
            }
        }
    }

    public func chmod(_ path: UnsafePointer<CChar>, _ mode: mode_t) -> Int32 {
        updateRecord(path) { $0.mode = UInt32(mode) & 0o7777 }
    }

    public func chown(_ path: UnsafePointer<CChar>, _ uid: uid_t, _ gid: gid_t) -> Int32 {
        updateRecord(path) { rec in
            if uid != uid_t.max { rec.uid = uid }
            if gid != gid_t.max { rec.gid = gid }
        }
    }

    public func utimens(_ path: UnsafePointer<CChar>, _ tv: UnsafePointer<timespec>?) -> Int32 {
        let now = Timestamp.now
        func pick(_ t: timespec, _ old: Timestamp) -> Timestamp {
            if t.tv_nsec == Int(UTIME_OMIT_VALUE) { return old }
            if t.tv_nsec == Int(UTIME_NOW_VALUE) { return now }
            return Timestamp(seconds: Int64(t.tv_sec), nanoseconds: UInt32(t.tv_nsec))
        }
        // A pending write would otherwise overwrite the new mtime when it is committed.
        if let r = try? resolve(path), let open = openFiles.withLock({ $0[r.key] }) { _ = commit(open) }
        return updateRecord(path) { rec in
            guard let tv else {
                rec.atime = now
                rec.mtime = now
                return
            }
            rec.atime = pick(tv[0], rec.atime)
            rec.mtime = pick(tv[1], rec.mtime)
        }
    }

    // MARK: Directories

    /// Lists a directory: one scan of the content keys and one of the node records below it,
    /// skipping whole subtrees (a seek each), never walking the store.
    /// Opens a directory for `readdir`; the handle goes to `releaseDirectory`.
    public func openDirectory() -> UInt64 { newHandle(.directory(DirectoryHandle())) }

    public func releaseDirectory(_ fh: UInt64) {
        _ = handles.withLock { $0.table.removeValue(forKey: fh) }
    }

    /// Lists a directory from entry `offset` on: `emit` gets each NUL-terminated name, its type
    /// (`S_IFREG`, `S_IFDIR` or `S_IFLNK`) and the offset of the entry after it, until it
    /// returns false. The listing (`.`, `..`, the control files at the root, then the
    /// directory's names) is built when a handle reads from offset 0 and kept with the handle,
    /// so each later kernel request costs only the entries it returns.
    public func readdir(
        _ path: UnsafePointer<CChar>?, fh: UInt64, offset: Int, _ emit: (UnsafePointer<CChar>, mode_t, Int) -> Bool
    ) -> Int32 {
        guard case .directory(let dir) = handle(fh) else { return -EBADF }
        return run {
            try dir.listing.withLock { listing in
                if offset == 0 || listing == nil {
                    guard let path else { return -ENOENT }  // removed while open
                    listing = try buildListing(path)
                }
                listing!.forEach(from: offset) { name, mode, i in emit(name, mode, i + 1) }
                return 0
            }
        }
    }

    private func buildListing(_ path: UnsafePointer<CChar>) throws -> DirectoryListing {
        var listing = DirectoryListing()
        let r = try resolve(path)
        guard let n = try node(r) else { throw FSError(-ENOENT) }
        guard case .directory = n else { throw FSError(-ENOTDIR) }
        listing.add([0x2e], S_IFDIR)
        listing.add([0x2e, 0x2e], S_IFDIR)
        if r.isRoot {
            for name in PathMapping.controlNames.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                listing.add(name, S_IFREG)
            }
        }
        try collect(r, into: &listing)
        return listing
    }

    /// Adds the names in the directory `r` (a directory) to `listing`.
    private func collect(_ r: PathMapping.Resolved, into listing: inout DirectoryListing) throws {
        func add(_ name: [UInt8], _ kind: mode_t) { listing.add(name, kind) }
        let prefix = r.childPrefix
        if r.isPieceDirectory {
            // Inside a long component: name children by the canonical path of each key that
            // goes through this piece.
            for ks in [Keyspace.user, FSKeyspace.nodes] {
                try db.scan(.prefix(prefix), keyspace: ks).forEach(values: false) { key, _ in
                    if let e = PathMapping.entry(ofChild: Array(key), in: r) {
                        add(e.name, !e.namesKey || ks == FSKeyspace.nodes ? S_IFDIR : S_IFREG)
                    }
                    return true
                }
            }
            return
        }
        // The directory's own key holds a value too: its `%=` entry.
        if !r.isRoot, try fileSize(r.key) != nil { add(PathMapping.selfName, S_IFREG) }
        for ks in [Keyspace.user, FSKeyspace.nodes] {
            var start = prefix
            let end = KeyRange.prefix(prefix).end
            while true {
                let cursor = try db.scan(KeyRange(start: start, end: end), keyspace: ks)
                var skipTo: [UInt8]?
                try cursor.forEach(values: ks == FSKeyspace.nodes) { key, value in
                    let rest = UnsafeRawBufferPointer(rebasing: key[prefix.count...])
                    if let slash = rest.firstIndex(of: 0x2f) {
                        let child = Array(rest[..<slash])
                        add(firstComponent(child, topLevel: r.isRoot), S_IFDIR)
                        // Jump past the subtree: prefix + child + "0" ('/' + 1).
                        skipTo = prefix + child + [0x30]
                        return false
                    }
                    var kind: mode_t = S_IFREG
                    if ks == FSKeyspace.nodes, let rec = NodeRecord.decode(Array(value)) {
                        kind = rec.kind == .symlink ? S_IFLNK : S_IFDIR
                    }
                    if PathMapping.isPlain(rest, topLevel: r.isRoot) {
                        listing.add(rest, kind)  // most names: the key's bytes as they are
                        return true
                    }
                    let pieces = PathMapping.split(
                        PathMapping.encodeComponent(Array(rest)[...], topLevel: r.isRoot))
                    add(pieces[0], pieces.count > 1 ? S_IFDIR : kind)
                    return true
                }
                guard let next = skipTo else { break }
                start = next
            }
        }
    }

    private func firstComponent(_ child: [UInt8], topLevel: Bool) -> [UInt8] {
        PathMapping.split(PathMapping.encodeComponent(child[...], topLevel: topLevel))[0]
    }

    /// Parent of a key ([] and isRoot for top-level keys).
    private func parentKey(_ key: [UInt8]) -> (key: [UInt8], isRoot: Bool) {
        guard let slash = key.lastIndex(of: 0x2f) else { return ([], true) }
        return (Array(key[..<slash]), false)
    }

    /// Records the parent directory of `key` if it is implicit, so that removing `key` does not
    /// make it vanish. REQUIRES: metaLock.
    private func keepParent(_ key: [UInt8], in batch: inout WriteBatch) throws {
        let parent = parentKey(key)
        guard !parent.isRoot else { return }
        if recordedDirectories.withLock({ $0.contains(parent.key) }) { return }
        if try record(parent.key, FSKeyspace.nodes) != nil {
            recordedDirectories.withLock { known in
                if known.count >= 4096 { known.removeAll() }
                known.insert(parent.key)
            }
            return
        }
        let rec = defaultRecord(.directory)
        batch.put(parent.key, rec.encode(), keyspace: FSKeyspace.nodes)
    }

    /// Checks a new name can be created at `r`. REQUIRES: metaLock.
    private func checkCreatable(_ r: PathMapping.Resolved) throws {
        if r.isRoot || r.isSelfEntry { throw FSError(-EEXIST) }
        if try node(r) != nil { throw FSError(-EEXIST) }
        // A piece directory is not a key: it exists while keys are below it.
        if r.key.isEmpty || r.isPieceDirectory { throw FSError(-EINVAL) }
        let parent = parentKey(r.key)
        if !parent.isRoot, try fileSize(parent.key) != nil, try !hasChildren(parent.key + [0x2f]) {
            throw FSError(-ENOTDIR)
        }
    }

    public func mkdir(_ path: UnsafePointer<CChar>, _ mode: mode_t, uid: uid_t, gid: gid_t) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -EEXIST }
        return run {
            let r = try resolve(path)
            return try metaLock.withLock { _ in
                try checkCreatable(r)
                let rec = NodeRecord(kind: .directory, mode: UInt32(mode), uid: uid, gid: gid)
                var batch = WriteBatch()
                batch.put(r.key, rec.encode(), keyspace: FSKeyspace.nodes)
                try apply(batch)
                return 0
            }
        }
    }

    public func rmdir(_ path: UnsafePointer<CChar>) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -ENOTDIR }
        return run {
            let r = try resolve(path)
            if r.isRoot { return -EBUSY }
            return try metaLock.withLock { _ in
                guard let n = try node(r) else { return -ENOENT }
                guard case .directory = n else { return -ENOTDIR }
                if try hasChildren(r.childPrefix) || (try fileSize(r.key) != nil) { return -ENOTEMPTY }
                var batch = WriteBatch()
                batch.delete(r.key, keyspace: FSKeyspace.nodes)
                recordedDirectories.withLock { $0.removeAll() }
                try keepParent(r.key, in: &batch)
                try apply(batch)
                return 0
            }
        }
    }

    public func symlink(_ target: UnsafePointer<CChar>, _ path: UnsafePointer<CChar>, uid: uid_t, gid: gid_t) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -EEXIST }
        return run {
            let r = try resolve(path)
            return try metaLock.withLock { _ in
                try checkCreatable(r)
                var rec = NodeRecord(kind: .symlink, mode: 0o777, uid: uid, gid: gid)
                rec.target = Array(UnsafeRawBufferPointer(start: target, count: strlen(target)))
                var batch = WriteBatch()
                batch.put(r.key, rec.encode(), keyspace: FSKeyspace.nodes)
                try apply(batch)
                return 0
            }
        }
    }

    public func readlink(_ path: UnsafePointer<CChar>, _ buf: UnsafeMutablePointer<CChar>, _ size: Int) -> Int32 {
        run {
            let r = try resolve(path)
            guard case .symlink(let rec) = try node(r) else { return -EINVAL }
            let n = min(rec.target.count, size - 1)
            rec.target.withUnsafeBytes { _ = memcpy(buf, $0.baseAddress!, n) }
            buf[n] = 0
            return 0
        }
    }

    // MARK: Files

    private func newHandle(_ h: Handle) -> UInt64 {
        handles.withLock { t in
            let id = t.next
            t.next += 1
            t.table[id] = h
            return id
        }
    }

    func handle(_ fh: UInt64) -> Handle? { handles.withLock { $0.table[fh] } }

    /// Registers one more open handle on `key`'s shared staging.
    private func acquireOpenFile(_ key: [UInt8]) -> OpenFile {
        openFiles.withLock { table in
            let f = table[key] ?? OpenFile(key: key)
            table[key] = f
            f.state.withLock { $0.opens += 1 }
            return f
        }
    }

    /// Creates and opens a file. A write-only handle (`writeOnly`, the way `cp`, `tar -x`,
    /// `rsync` and shell redirections open new files) comes back `uncached`, to be opened with
    /// FOPEN_DIRECT_IO and FOPEN_NOFLUSH.
    ///
    /// Direct I/O: writes come straight here instead of through the kernel's page cache,
    /// which spares the GETXATTR(`security.capability`) the kernel sends before each write
    /// through the cache (its `file_remove_privs`; a sixth round trip for a 4 KiB file:
    /// creates 20-40% faster in `Benchmarks/fs_daemon_cpu.sh`). Nothing is lost: a write-only
    /// handle cannot read or map the file, and a new file has no cached pages to go stale;
    /// opens made while it lives bypass the cache too (`OpenFile.State.uncachedHandles`; since
    /// Linux 6.6 a direct write also drops the cached pages it overwrites, older kernels do
    /// not), and the privilege drops the kernel then leaves to us are done by `write`. The
    /// written pages are not cached, so the first read afterwards comes to the mount.
    ///
    /// No flush: `close` sends no FLUSH, whose round trip was one in five of a small file's
    /// create (with the direct I/O above: 4 KiB creates 4,843 -> 9,379/s, empty files 10,081
    /// -> 14,904/s in an A/B, BENCHMARKS.md). RELEASE, which
    /// the kernel sends after `close` returns, commits instead, so close cannot report a
    /// failed commit. A full disk is therefore caught by `write`: it refuses with ENOSPC what
    /// the store's disk could not take at RELEASE (`DeferredSpace`). `fsync` still commits and
    /// reports errors; a commit that fails at RELEASE all the same (an I/O error) is logged.
    /// Readers of the mount see the bytes at once either way: every handle of a path shares
    /// one staging (`OpenFile`) until the last is released, and `rename`, `utimens` and
    /// `fsync` commit it first.
    public func create(
        _ path: UnsafePointer<CChar>, _ mode: mode_t, uid: uid_t, gid: gid_t, writeOnly: Bool = false,
        fh: inout UInt64, uncached: inout Bool
    ) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -EEXIST }
        return run {
            let r = try resolve(path)
            return try metaLock.withLock { _ in
                try checkCreatable(r)
                let rec = NodeRecord(kind: .file, mode: UInt32(mode), uid: uid, gid: gid)
                var batch = WriteBatch()
                batch.put(r.key, [], keyspace: .user)
                batch.put(r.key, rec.encode(), keyspace: FSKeyspace.fileAttributes)
                try apply(batch)
                let f = acquireOpenFile(r.key)
                f.state.withLock { s in
                    if case .store = s.content { s.content = .memory([]) }
                    s.plain = true
                    s.record = rec
                    if writeOnly { s.uncachedHandles += 1 }
                }
                fh = newHandle(.file(f, uncached: writeOnly, noFlush: writeOnly))
                uncached = writeOnly
                return 0
            }
        }
    }

    /// `uid`: the caller's; the control files that act are the mounting user's alone.
    public func open(
        _ path: UnsafePointer<CChar>, flags: Int32, uid: uid_t, fh: inout UInt64, directIO: inout Bool
    ) -> Int32 {
        if let kind = SliceFileSystem.controlKind(path) {
            let writing = flags & O_ACCMODE != O_RDONLY
            // The daemon holds to the modes even on a mount without default_permissions,
            // where the kernel checks nothing.
            if !mayOpenControl(kind, uid: uid, writing: writing) { return -EACCES }
            let content: [UInt8]
            switch kind {
            case .stats: content = Array(db.stats().prometheusText.utf8)
            case .statsJSON: content = Array((db.stats().jsonText + "\n").utf8)
            default: content = Array(controlResults.get(kind).utf8)
            }
            fh = newHandle(.control(ControlFile(kind: kind, content: content)))
            directIO = true
            return 0
        }
        return run {
            let r = try resolve(path)
            guard let n = try node(r) else { return -ENOENT }
            switch n {
            case .directory: return -EISDIR
            case .symlink: return -ELOOP
            case .file: break
            }
            let f = acquireOpenFile(r.key)
            if !r.isSelfEntry && !r.isPieceDirectory { f.state.withLock { $0.plain = true } }
            if flags & O_TRUNC != 0 {
                f.state.withLock { s in
                    s.replace(with: .memory([]))
                    s.dirty = true
                    s.mtime = .now
                }
                nodeCache.invalidate()  // sizes come from staged content
            }
            // Under metaLock: `create` counts its uncached handle under it too, so an open racing
            // a create sees the count.
            let uncached = metaLock.withLock { _ in
                f.state.withLock { s in
                    if s.uncachedHandles > 0 { s.uncachedHandles += 1 }
                    return s.uncachedHandles > 0
                }
            }
            fh = newHandle(.file(f, uncached: uncached, noFlush: false))
            directIO = uncached
            return 0
        }
    }

    /// Files up to this size are staged in memory while written; larger ones stream into the
    /// store or spill to a temporary file (see `OpenFile`). 4 MiB: most files, bounded memory.
    static let stagingMemoryLimit = 4 << 20

    /// Stages a file's stored content so it can be edited: in memory when small, else in a
    /// spill file (only the first `limit` bytes when given: a truncate does not copy what it
    /// cuts). REQUIRES: s locked, content is `.store`.
    private func stage(_ s: inout OpenFile.State, upTo limit: UInt64? = nil) throws {
        let stored = try db.valueSize(s.key) ?? 0
        let size = min(stored, limit ?? stored)
        if size <= UInt64(SliceFileSystem.stagingMemoryLimit) {
            s.content = .memory(size == 0 ? [] : (try db.read(s.key, offset: 0, count: Int(size)) ?? []))
            return
        }
        let spill = try SpillFile(directory: db.path)
        let key = s.key
        let copied = try SliceFileSystem.copyInPieces(
            length: size, read: { at, buf in try db.read(key, offset: at, into: buf) ?? 0 },
            write: { at, buf in try spill.write(buf, at: at) })
        s.content = .spill(spill, length: copied)
    }

    /// Moves `length` bytes from `read` to `write` in 1 MiB pieces, so a large file never sits
    /// in memory whole. Returns the bytes moved (fewer only when `read` ends early).
    static func copyInPieces(
        length: UInt64, read: (UInt64, UnsafeMutableRawBufferPointer) throws -> Int,
        write: (UInt64, UnsafeRawBufferPointer) throws -> Void
    ) throws -> UInt64 {
        let piece = 1 << 20
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: piece, alignment: 16)
        defer { buffer.deallocate() }
        var at: UInt64 = 0
        while at < length {
            let want = Int(min(UInt64(piece), length - at))
            let n = try read(at, UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
            if n == 0 { break }
            try write(at, UnsafeRawBufferPointer(rebasing: buffer[0..<n]))
            at += UInt64(n)
        }
        return at
    }

    public func read(_ fh: UInt64, _ buf: UnsafeMutablePointer<CChar>, _ size: Int, _ offset: off_t) -> Int32 {
        switch handle(fh) {
        case .control(let c):
            let start = min(Int(offset), c.content.count)
            let n = min(size, c.content.count - start)
            c.content.withUnsafeBytes { _ = memcpy(buf, $0.baseAddress! + start, n) }
            return Int32(n)
        case .file(let f, _, _):
            let out = UnsafeMutableRawBufferPointer(start: buf, count: size)
            return run {
                for _ in 0..<3 {
                    let r = try f.state.withLock { s -> Int32? in
                        switch s.content {
                        case .memory(let data):
                            let start = min(Int(offset), data.count)
                            let n = min(size, data.count - start)
                            if n > 0 { data.withUnsafeBytes { _ = memcpy(buf, $0.baseAddress! + start, n) } }
                            return Int32(n)
                        case .spill(let spill, let length):
                            guard UInt64(offset) < length else { return 0 }
                            let n = Int(min(UInt64(size), length - UInt64(offset)))
                            return Int32(
                                try spill.read(
                                    into: UnsafeMutableRawBufferPointer(rebasing: out[0..<n]), at: UInt64(offset)))
                        case .stream:
                            return nil  // publish it first (below), then read from the store
                        case .store:
                            return Int32(try db.read(s.key, offset: UInt64(offset), into: out) ?? 0)
                        }
                    }
                    if let r { return r }
                    let c = commit(f)
                    if c != 0 { return c }
                }
                return -EIO
            }
        case .directory: return -EISDIR
        case nil: return -EBADF
        }
    }

    /// `uid`: the writer's, for the privilege drop of a write that bypasses the page cache
    /// (uid 0 stands for CAP_FSETID: libfuse's high-level API does not pass on the kernel's
    /// FUSE_WRITE_KILL_SUIDGID flag). `attributesChanged` comes back true when that drop
    /// changed the file's mode or attributes, which the kernel may have cached: the caller
    /// must invalidate them.
    public func write(
        _ fh: UInt64, _ buf: UnsafePointer<CChar>, _ size: Int, _ offset: off_t, uid: uid_t,
        attributesChanged: inout Bool
    ) -> Int32 {
        switch handle(fh) {
        case .control(let c):
            let result: String
            var failed = false
            do {
                switch c.kind {
                case .flush: try db.flush()
                case .compact: try db.compact()
                case .sync: try db.sync()
                default: return -EPERM
                }
                result = "ok \(c.kind.rawValue.dropFirst()) \(ISO8601DateFormatter().string(from: Date()))\n"
            } catch {
                failed = true
                result = "error: \(error)\n"
            }
            controlResults.set(c.kind, result)
            return failed ? -EIO : Int32(size)
        case .file(let f, let uncached, let noFlush):
            let end = Int(offset) + size
            if end > maxFileSize { return -EFBIG }
            let incoming = UnsafeRawBufferPointer(start: buf, count: size)
            let limit = SliceFileSystem.stagingMemoryLimit
            return run {
                for _ in 0..<3 {
                    let r = try f.state.withLock { s -> Int32? in
                        // Committed at RELEASE: accepted only if the disk can take it then.
                        if noFlush { try deferredSpace.check(adding: size) }
                        while true {
                            switch s.content {
                            case .store:
                                try stage(&s)
                                continue
                            case .memory(var data):
                                if Int(offset) == data.count && end > limit {
                                    // Growing past the memory limit by appending: stream it.
                                    let w = try db.valueWriter(for: s.key)
                                    try w.write(data)
                                    try w.write(incoming)
                                    s.content = .stream(w, length: UInt64(end))
                                } else if end > limit {
                                    let spill = try SpillFile(directory: db.path)
                                    try data.withUnsafeBytes { try spill.write($0, at: 0) }
                                    try spill.write(incoming, at: UInt64(offset))
                                    s.content = .spill(spill, length: UInt64(max(end, data.count)))
                                } else {
                                    s.content = .store  // drop the array's second reference before editing
                                    if Int(offset) == data.count {
                                        data.append(contentsOf: incoming)
                                    } else {
                                        if data.count < end {
                                            data.append(contentsOf: repeatElement(0, count: end - data.count))
                                        }
                                        data.withUnsafeMutableBytes {
                                            _ = memcpy($0.baseAddress! + Int(offset), buf, size)
                                        }
                                    }
                                    s.content = .memory(data)
                                }
                            case .stream(let w, let length):
                                guard UInt64(offset) == length else { return nil }  // publish, then stage
                                try w.write(incoming)
                                s.content = .stream(w, length: length + UInt64(size))
                            case .spill(let spill, let length):
                                try spill.write(incoming, at: UInt64(offset))
                                s.content = .spill(spill, length: max(length, UInt64(end)))
                            }
                            s.dirty = true
                            s.mtime = .now
                            if noFlush { deferredSpace.set(&s.deferredBytes, to: s.uncommittedBytes) }
                            if uncached {
                                let before = s.record.map(s.applyingDrops)
                                let firstDrop = !s.dropCapability || (uid != 0 && !s.dropSetID)
                                if uid != 0 { s.dropSetID = true }
                                s.dropCapability = true
                                if let before {
                                    let after = s.applyingDrops(to: before)
                                    attributesChanged = after.mode != before.mode || after.xattrs != before.xattrs
                                } else {
                                    attributesChanged = firstDrop  // not known: say so once
                                }
                            }
                            return Int32(size)
                        }
                    }
                    if let r {
                        nodeCache.invalidate()  // sizes come from staged content
                        return r
                    }
                    let c = commit(f)
                    if c != 0 { return c }
                }
                return -EIO
            }
        case .directory: return -EISDIR
        case nil: return -EBADF
        }
    }

    /// Writes staged content back: value and attributes in one batch. A stream is published
    /// (the file goes back to `.store`); memory and spill staging stay for further edits.
    func commit(_ f: OpenFile, sync: Bool = false) -> Int32 {
        run {
            try metaLock.withLock { _ in
                try f.state.withLock { s in
                    guard s.dirty, !s.unlinked else { return 0 }
                    var rec = s.applyingDrops(
                        to: try s.record ?? record(s.key, FSKeyspace.fileAttributes) ?? defaultRecord(.file))
                    let t = s.mtime ?? .now
                    rec.mtime = t
                    rec.ctime = t
                    var attrs = WriteBatch()
                    attrs.put(s.key, rec.encode(), keyspace: FSKeyspace.fileAttributes)
                    switch s.content {
                    case .store:
                        try apply(attrs, sync: sync)
                    case .memory(let data):
                        var batch = WriteBatch()
                        batch.put(s.key, data, keyspace: .user)
                        batch.append(contentsOf: attrs)
                        try apply(batch, sync: sync)
                    case .stream(let w, _):
                        s.content = .store
                        defer { nodeCache.invalidate() }
                        try w.commit(with: attrs, sync: sync)
                    case .spill(let spill, let length):
                        let w = try db.valueWriter(for: s.key)
                        let copied = try SliceFileSystem.copyInPieces(
                            length: length, read: { at, buf in try spill.read(into: buf, at: at) },
                            write: { _, buf in try w.write(buf) })
                        guard copied == length else { throw FSError(-EIO) }
                        defer { nodeCache.invalidate() }
                        try w.commit(with: attrs, sync: sync)
                    }
                    s.dirty = false
                    s.mtime = nil
                    (s.dropSetID, s.dropCapability) = (false, false)
                    deferredSpace.set(&s.deferredBytes, to: 0)
                    if s.plain { s.record = rec }
                    return 0
                }
            }
        }
    }

    public func flush(_ fh: UInt64) -> Int32 {
        guard case .file(let f, _, _) = handle(fh) else { return 0 }
        return commit(f)
    }

    public func fsync(_ fh: UInt64) -> Int32 {
        guard case .file(let f, _, _) = handle(fh) else { return 0 }
        let r = commit(f, sync: true)
        if r != 0 { return r }
        return guarded {
            try db.sync()
            return 0
        }
    }

    public func release(_ fh: UInt64) -> Int32 {
        guard let h = handles.withLock({ $0.table.removeValue(forKey: fh) }) else { return -EBADF }
        guard case .file(let f, let uncached, _) = h else { return 0 }
        let result = commit(f)
        if result != 0 {
            // RELEASE has no caller left to tell (close returned already): the log has it.
            let key = f.state.withLock { $0.key }
            SliceFileSystem.log(
                "commit at close failed for \(String(decoding: PathMapping.path(forKey: key), as: UTF8.self)): \(String(cString: strerror(-result)))"
            )
        }
        openFiles.withLock { table in
            let remaining = f.state.withLock { s in
                s.opens -= 1
                if uncached { s.uncachedHandles -= 1 }
                return s.opens
            }
            if remaining == 0 {
                let key = f.state.withLock { s in
                    s.replace(with: .store)  // staging goes with the last handle
                    deferredSpace.set(&s.deferredBytes, to: 0)
                    return s.key
                }
                if table[key] === f { table[key] = nil }
                nodeCache.invalidate()  // a failed commit's size is gone with the staging
            }
        }
        return result
    }

    public func truncate(_ path: UnsafePointer<CChar>?, _ size: off_t, fh: UInt64?) -> Int32 {
        if size < 0 { return -EINVAL }
        if Int(size) > maxFileSize { return -EFBIG }
        if let path, SliceFileSystem.controlKind(path) != nil { return -EPERM }
        return run {
            var file: OpenFile?
            var temporary: UInt64?
            if let fh, case .file(let f, _, _) = handle(fh) { file = f }
            if file == nil, let path {
                let r = try resolve(path)
                guard let n = try node(r) else { return -ENOENT }
                guard case .file = n else { return -EISDIR }
                let f = acquireOpenFile(r.key)
                temporary = newHandle(.file(f, uncached: false, noFlush: false))  // released (and committed) below
                file = f
            }
            defer { if let temporary { _ = release(temporary) } }
            guard let f = file else { return -EBADF }
            let n = UInt64(size)
            for _ in 0..<3 {
                let done = try f.state.withLock { s -> Bool in
                    switch s.content {
                    case .stream(_, let length) where length != n:
                        return false  // publish it, then stage
                    case .stream:
                        break
                    case .store:
                        try stage(&s, upTo: n)
                    default:
                        break
                    }
                    switch s.content {
                    case .memory(var data):
                        s.content = .store
                        if data.count > Int(n) {
                            data.removeLast(data.count - Int(n))
                        } else {
                            data.append(contentsOf: repeatElement(0, count: Int(n) - data.count))
                        }
                        s.content = .memory(data)
                    case .spill(let spill, _):
                        try spill.truncate(to: n)
                        s.content = .spill(spill, length: n)
                    case .stream, .store:
                        break
                    }
                    s.dirty = true
                    s.mtime = .now
                    return true
                }
                if done {
                    nodeCache.invalidate()
                    return commit(f)
                }
                let c = commit(f)
                if c != 0 { return c }
            }
            return -EIO
        }
    }

    public func unlink(_ path: UnsafePointer<CChar>) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -EPERM }
        return run {
            let r = try resolve(path)
            return try metaLock.withLock { _ in
                guard let n = try node(r) else { return -ENOENT }
                var batch = WriteBatch()
                switch n {
                case .directory: return -EISDIR
                case .symlink:
                    batch.delete(r.key, keyspace: FSKeyspace.nodes)
                    recordedDirectories.withLock { $0.removeAll() }
                case .file:
                    batch.delete(r.key, keyspace: .user)
                    batch.delete(r.key, keyspace: FSKeyspace.fileAttributes)
                }
                if !r.isSelfEntry { try keepParent(r.key, in: &batch) }
                try detachOpenFile(r.key)
                try apply(batch)
                forgetOpenFile(r.key)
                return 0
            }
        }
    }

    /// Before the file at `key` loses its name (unlinked or replaced): if it is open, its
    /// content and record are staged, so its handles keep reading what it held, as POSIX
    /// wants. REQUIRES: metaLock.
    private func detachOpenFile(_ key: [UInt8]) throws {
        guard let f = openFiles.withLock({ $0[key] }) else { return }
        let stored = try record(key, FSKeyspace.fileAttributes) ?? defaultRecord(.file)
        try f.state.withLock { s in
            if case .store = s.content { try stage(&s) }
            if case .stream = s.content { s.replace(with: .memory([])) }  // never published: dropped with the name
            if s.record == nil { s.record = stored }
        }
    }

    /// After the file at `key` lost its name: its handles keep their content, but nothing they
    /// do reaches the store, and a new file of that name gets staging of its own.
    /// REQUIRES: metaLock.
    private func forgetOpenFile(_ key: [UInt8]) {
        openFiles.withLock { table in
            guard let f = table.removeValue(forKey: key) else { return }
            f.state.withLock { $0.unlinked = true }
        }
    }

    public func link(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 {
        -EPERM  // hard links are not supported: a key has one path
    }

    // MARK: Rename

    public func rename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>, flags: UInt32) -> Int32 {
        if SliceFileSystem.controlKind(from) != nil || SliceFileSystem.controlKind(to) != nil { return -EPERM }
        if flags & RENAME_EXCHANGE_VALUE != 0 { return -EINVAL }
        return run {
            let src = try resolve(from)
            let dst = try resolve(to)
            if src.isRoot || dst.isRoot { return -EBUSY }
            if src.isPieceDirectory || dst.isPieceDirectory { return -EINVAL }
            // Pending writes under the source go to the engine first, so the batch moves them.
            let pending = openFiles.withLock { Array($0.values) }
            for f in pending {
                let key = f.state.withLock { $0.key }
                if key == src.key || key.starts(with: src.childPrefix) { _ = commit(f) }
            }
            return try metaLock.withLock { _ in
                guard let s = try node(src) else { return -ENOENT }
                let d = try node(dst)
                if src.key == dst.key && src.isSelfEntry == dst.isSelfEntry { return 0 }
                if d != nil && flags & RENAME_NOREPLACE_VALUE != 0 { return -EEXIST }
                switch (s, d) {
                case (.file, nil), (.file, .file?): break  // no node record goes
                default: recordedDirectories.withLock { $0.removeAll() }
                }
                if d == nil, dst.key.isEmpty { return -EINVAL }
                var batch = WriteBatch()
                switch s {
                case .directory:
                    if dst.key.starts(with: src.childPrefix) { return -EINVAL }
                    if let d {
                        guard case .directory = d else { return -ENOTDIR }
                        if try hasChildren(dst.childPrefix) || (try fileSize(dst.key) != nil) { return -ENOTEMPTY }
                    }
                    try moveTree(src, dst, into: &batch)
                case .file, .symlink:
                    if let d {
                        if case .directory = d { return -EISDIR }
                        batch.delete(dst.key, keyspace: .user)
                        batch.delete(dst.key, keyspace: FSKeyspace.fileAttributes)
                        // A replaced symlink's record goes; a replaced `%=` entry's key keeps
                        // its directory's record.
                        if case .symlink = d { batch.delete(dst.key, keyspace: FSKeyspace.nodes) }
                    }
                    if case .file(let rec, _) = s {
                        try moveFile(src.key, dst.key, record: rec, into: &batch)
                    } else {
                        try moveOne(src.key, dst.key, into: &batch)
                    }
                }
                if !src.isSelfEntry { try keepParent(src.key, in: &batch) }
                if d != nil { try detachOpenFile(dst.key) }
                try apply(batch)
                if d != nil { forgetOpenFile(dst.key) }  // a replaced file is unlinked
                // Open files follow their paths.
                openFiles.withLock { table in
                    for (key, f) in table where key == src.key || key.starts(with: src.childPrefix) {
                        let newKey = dst.key + key.dropFirst(src.key.count)
                        table[key] = nil
                        table[newKey] = f
                        f.state.withLock { s in
                            s.key = newKey
                            // Moved to a `%=` entry: its plain path is now a directory.
                            if key == src.key && dst.isSelfEntry {
                                s.plain = false
                                s.record = nil
                            }
                        }
                    }
                }
                return 0
            }
        }
    }

    /// Moves a file: its content and its attribute record, which the caller has from `node`
    /// (nil: the file has none). A directory record at the same key (a `%=` entry's directory)
    /// stays. REQUIRES: metaLock.
    private func moveFile(_ from: [UInt8], _ to: [UInt8], record: NodeRecord?, into batch: inout WriteBatch) throws {
        if let v = try db.storedValue(from) {  // as stored: a large file's bytes are not copied
            batch.put(to, v)
            batch.delete(from)
        }
        if let record {
            batch.put(to, record.encode(), keyspace: FSKeyspace.fileAttributes)
            batch.delete(from, keyspace: FSKeyspace.fileAttributes)
        }
    }

    /// Moves one key's content and records. REQUIRES: metaLock.
    private func moveOne(_ from: [UInt8], _ to: [UInt8], into batch: inout WriteBatch) throws {
        // Content moves as the store holds it: a large file's bytes are not copied.
        if let v = try db.storedValue(from) {
            batch.put(to, v)
            batch.delete(from)
        }
        for ks in [FSKeyspace.fileAttributes, FSKeyspace.nodes] {
            if let v = try db.get(from, keyspace: ks) {
                batch.put(to, v, keyspace: ks)
                batch.delete(from, keyspace: ks)
            }
        }
    }

    /// Moves a directory and everything under it, as part of one batch. REQUIRES: metaLock.
    private func moveTree(_ src: PathMapping.Resolved, _ dst: PathMapping.Resolved, into batch: inout WriteBatch) throws
    {
        try moveOne(src.key, dst.key, into: &batch)
        let prefix = src.childPrefix
        let files = try db.scan(.prefix(prefix))
        while let key = try files.nextKey() {
            guard let v = try db.storedValue(key) else { continue }
            batch.put(dst.childPrefix + key.dropFirst(prefix.count), v)
            batch.delete(key)
        }
        for ks in [FSKeyspace.fileAttributes, FSKeyspace.nodes] {
            let cursor = try db.scan(.prefix(prefix), keyspace: ks)
            while let kv = try cursor.next() {
                batch.put(dst.childPrefix + kv.key.dropFirst(prefix.count), kv.value, keyspace: ks)
                batch.delete(kv.key, keyspace: ks)
            }
        }
        if try record(dst.key, FSKeyspace.nodes) == nil && (try db.get(src.key, keyspace: FSKeyspace.nodes)) == nil {
            // An implicit directory stays a directory at its new name even if empty.
            let rec = defaultRecord(.directory)
            batch.put(dst.key, rec.encode(), keyspace: FSKeyspace.nodes)
        }
    }

    // MARK: Extended attributes

    public func setxattr(
        _ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ value: UnsafePointer<CChar>?, _ size: Int,
        _ flags: Int32
    ) -> Int32 {
        let n = Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
        let v = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
        if n.count > 255 { return -ERANGE }
        // POSIX ACLs are not supported; refusing them makes cp -a and rsync fall back to chmod.
        if n.starts(with: Array("system.posix_acl_".utf8)) { return -EOPNOTSUPP }
        if v.count > 64 << 10 { return -E2BIG }
        var error: Int32 = 0
        let r = updateRecord(path) { rec in
            let exists = rec.xattrs[n] != nil
            if flags & XATTR_CREATE_VALUE != 0 && exists {
                error = -EEXIST
                return
            }
            if flags & XATTR_REPLACE_VALUE != 0 && !exists {
                error = -ENODATA
                return
            }
            rec.xattrs[n] = v
        }
        return error != 0 ? error : r
    }

    public func getxattr(
        _ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int
    ) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return -ENODATA }
        return run {
            let r = try resolve(path)
            let n = Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
            let v: [UInt8]?
            if let rec = cachedRecord(r) {
                v = rec.xattrs[n]
            } else {
                guard let node = try node(r) else { return -ENOENT }
                v = recordOf(node)?.xattrs[n]
            }
            guard let v else { return -ENODATA }
            if size == 0 { return Int32(v.count) }
            if size < v.count { return -ERANGE }
            if !v.isEmpty { v.withUnsafeBytes { _ = memcpy(buf!, $0.baseAddress!, v.count) } }
            return Int32(v.count)
        }
    }

    public func listxattr(_ path: UnsafePointer<CChar>, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int32 {
        if SliceFileSystem.controlKind(path) != nil { return 0 }
        return run {
            let r = try resolve(path)
            let rec: NodeRecord?
            if let cached = cachedRecord(r) {
                rec = cached
            } else {
                guard let node = try node(r) else { return -ENOENT }
                rec = recordOf(node)
            }
            var out: [UInt8] = []
            for name in (rec?.xattrs.keys.sorted { $0.lexicographicallyPrecedes($1) } ?? []) {
                out.append(contentsOf: name)
                out.append(0)
            }
            if size == 0 { return Int32(out.count) }
            if size < out.count { return -ERANGE }
            if !out.isEmpty { out.withUnsafeBytes { _ = memcpy(buf!, $0.baseAddress!, out.count) } }
            return Int32(out.count)
        }
    }

    public func removexattr(_ path: UnsafePointer<CChar>, _ name: UnsafePointer<CChar>) -> Int32 {
        let n = Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
        var error: Int32 = 0
        let r = updateRecord(path) { rec in
            if rec.xattrs.removeValue(forKey: n) == nil { error = -ENODATA }
        }
        return error != 0 ? error : r
    }

    /// The cached record of a file open through the plain path `r`, if there is one.
    private func cachedRecord(_ r: PathMapping.Resolved) -> NodeRecord? {
        openPlainFile(r)?.state.withLock { s in s.plain && !s.unlinked ? s.record.map(s.applyingDrops) : nil }
    }

    private func recordOf(_ n: Node) -> NodeRecord? {
        switch n {
        case .file(let r, _): return r
        case .directory(let r): return r
        case .symlink(let r): return r
        }
    }

    // MARK: Filesystem

    public func statfs(_ st: UnsafeMutablePointer<statvfs>) -> Int32 {
        guard slice_statvfs(db.path, st) == 0 else { return -Glibc.errno }
        st.pointee.f_namemax = UInt(PathMapping.nameMax)
        return 0
    }

    /// Writes back every open file (unmount, SIGTERM).
    public func flushAll() {
        for f in openFiles.withLock({ Array($0.values) }) { _ = commit(f) }
    }
}

let RENAME_NOREPLACE_VALUE: UInt32 = 1
let RENAME_EXCHANGE_VALUE: UInt32 = 2
let XATTR_CREATE_VALUE: Int32 = 1
let XATTR_REPLACE_VALUE: Int32 = 2
let UTIME_NOW_VALUE: Int = (1 << 30) - 1
let UTIME_OMIT_VALUE: Int = (1 << 30) - 2
