import CFuse
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

/// The filesystem's names over a store, in keys: resolves paths to nodes and makes every
/// change to names and records as one atomic batch. Knows nothing of FUSE: errors are
/// `FSError` errnos, and it is unit-tested on a store without a kernel.
///
/// Names are keys (`PathMapping`); a node made through the mount has an `EntryRecord` under its
/// key and an `InodeRecord` under its number (`FSLayout.swift`). Keys put through the API are
/// files without records, and directories exist implicitly while keys lie below them; both
/// have derived inode numbers (`InodeNumbers`) and get records the first time the mount changes
/// them, keeping their numbers. Any change inside a directory records the directory (its
/// times change), so a directory never vanishes when its last entry goes.
///
/// Threads: every change runs under `metaLock`; a change to a non-directory's record also takes
/// that inode's stripe (`InodeLocks`), which is all a content commit takes. Reads take no lock
/// (the store gives each read a consistent view).
/// A record that another names was not there: a change (a rename over a file, a purge) ran
/// between two reads of one lookup. The caller reads again (`SliceFileSystem.retrying`).
struct Vanished: Error {}

final class Namespace: Sendable {
    let store: any FileStore
    let content: FileContent
    let inodeLocks = InodeLocks()
    let defaultUid: UInt32
    let defaultGid: UInt32
    /// The times of nodes without records.
    let mountTime = Timestamp.now
    /// Serialises changes to names and records (see the type's doc). The byte is there because
    /// ThreadSanitizer misreports a `Locked<Void>`.
    let metaLock = Locked<UInt8>(0)
    /// The next inode number to hand out (persisted in the batch that uses one). On a store
    /// shared by several mounts: the numbers this mount claimed and has not used yet.
    private let nextInode: Locked<Range<InodeNumber>>
    /// Subdirectory counts of directories (for their link count), cleared by any change that
    /// adds, removes or moves a directory.
    private let subdirectoryCounts = Locked<[InodeNumber: Int]>([:])
    /// Whether the store holds records of the first layout (checked once: the mount is the
    /// only writer, and it never writes them), so lookups skip those keyspaces when it does not.
    let hasLegacyRecords: Bool
    /// Resolutions kept while nothing is written (`knownNode`).
    let lookups = LookupCache()

    init(store: any FileStore, uid: UInt32, gid: UInt32) throws {
        self.store = store
        content = FileContent(store: store)
        defaultUid = uid
        defaultGid = gid
        var next = InodeNumbers.firstAllocated
        if store.sharedWithOtherMounts {
            next = InodeNumbers.controlBase  // an empty range: the first allocation claims some
        } else if let bytes = try store.get(FSKeyspace.nextInodeKey, keyspace: FSKeyspace.meta) {
            var r = RecordReader(bytes)
            guard let n = r.fixed64() else { throw FSError(EIO) }
            next = max(n, next)
        }
        nextInode = Locked(next..<InodeNumbers.controlBase)
        hasLegacyRecords =
            try [FSKeyspace.legacyFileAttributes, FSKeyspace.legacyNodes, Keyspace(rawValue: 0x12)].contains {
                try store.containsKey(withPrefix: [], keyspace: $0)
            }
    }

    // MARK: Resolution

    func record(_ ino: InodeNumber) throws -> InodeRecord? {
        guard let bytes = try store.get(FSKeyspace.inodeKey(ino), keyspace: FSKeyspace.inodes) else { return nil }
        guard let r = InodeRecord.decode(bytes) else { throw FSError(EIO) }
        return r
    }

    private func entry(_ key: [UInt8]) throws -> EntryRecord? {
        guard let bytes = try store.get(key, keyspace: FSKeyspace.entries) else { return nil }
        guard let e = EntryRecord.decode(bytes) else { throw FSError(EIO) }
        return e
    }

    /// Whether any key lies under `prefix` (content, entries, or first-layout records).
    func hasChildren(_ prefix: [UInt8]) throws -> Bool {
        try store.containsKey(withPrefix: prefix, keyspace: .user)
            || store.containsKey(withPrefix: prefix, keyspace: FSKeyspace.entries)
            || (hasLegacyRecords && store.containsKey(withPrefix: prefix, keyspace: FSKeyspace.legacyNodes))
    }

    /// Keyspaces the namespace reads names from (the first layout's only when the store has
    /// records of it).
    var nameKeyspaces: [Keyspace] {
        hasLegacyRecords ? [.user, FSKeyspace.entries, FSKeyspace.legacyNodes] : [.user, FSKeyspace.entries]
    }

    private func legacyRecord(_ key: [UInt8], _ keyspace: Keyspace) throws -> NodeRecord? {
        guard hasLegacyRecords else { return nil }
        guard let bytes = try store.get(key, keyspace: keyspace) else { return nil }
        guard let r = NodeRecord.decode(bytes) else { throw FSError(EIO) }
        return r
    }

    /// An inode record from a first-layout record.
    private func converted(_ old: NodeRecord) -> InodeRecord {
        let kind: InodeRecord.Kind =
            switch old.kind {
            case .file: .file
            case .directory: .directory
            case .symlink: .symlink
            }
        var r = InodeRecord(kind: kind, mode: old.mode, uid: old.uid, gid: old.gid, time: old.atime)
        r.mtime = old.mtime
        r.ctime = old.ctime
        r.target = old.target
        r.xattrs = old.xattrs
        return r
    }

    func root() throws -> Node {
        let rec = try record(InodeNumbers.root)
        return Node(
            ino: InodeNumbers.root, kind: .directory, key: [], record: rec, content: .none, recorded: rec != nil)
    }

    /// The directory a key's children imply (no record).
    private func implicitDirectory(_ r: PathMapping.Resolved) -> Node {
        Node(
            ino: InodeNumbers.derived(r.childPrefix, directory: true), kind: .directory, key: r.key, record: nil,
            content: .none, recorded: false)
    }

    /// The non-directory at `key`, if any: a recorded node, or API-written content.
    private func fileAt(_ key: [UInt8], entry e: EntryRecord?) throws -> Node? {
        if let e, e.kind != .directory {
            guard let rec = try record(e.ino) else { throw Vanished() }
            guard e.kind == .file else {
                return Node(ino: e.ino, kind: e.kind, key: key, record: rec, content: .none, recorded: true)
            }
            let (content, size) = try contentOf(key, ino: e.ino)
            var n = Node(ino: e.ino, kind: e.kind, key: key, record: rec, content: content, recorded: true)
            n.committedSize = size
            return n
        }
        switch try store.contentEntry(key) {
        case nil: return nil
        case .plain(let size):
            let legacy = try legacyRecord(key, FSKeyspace.legacyFileAttributes)
            return Node(
                ino: InodeNumbers.derived(key, directory: false), kind: .file, key: key, record: legacy.map(converted),
                content: .plain(size: size), recorded: false, legacy: legacy != nil)
        case .file(let ino, let size):
            guard let rec = try record(ino) else { throw Vanished() }
            var n = Node(ino: ino, kind: .file, key: key, record: rec, content: .chunks, recorded: false)
            n.committedSize = size
            return n
        }
    }

    /// The content of the file `ino` named at `key`, and its size when the lookup read it.
    private func contentOf(_ key: [UInt8], ino: InodeNumber) throws -> (Node.Content, UInt64?) {
        switch try store.contentEntry(key) {
        case .file(_, let size): return (.chunks, size)
        case .plain(let size): return (.plain(size: size), nil)
        case nil: return (.chunks, nil)
        }
    }

    /// What a resolved path names, or nil. `current`: a node of an inode the caller knows to be
    /// current (its cache is dropped by every change to it): when the name's entry record
    /// points at a non-directory whose current node was found at this very key, that node is
    /// the answer, one read instead of four.
    func node(_ r: PathMapping.Resolved, current: (InodeNumber) -> Node? = { _ in nil }) throws -> Node? {
        if r.isRoot { return try root() }
        if r.key.isEmpty || r.isPieceDirectory {
            return try hasChildren(r.childPrefix) ? implicitDirectory(r) : nil
        }
        let e = try entry(r.key)
        if let e, e.kind != .directory, !r.isSelfEntry, let n = current(e.ino), n.key == r.key, n.kind == e.kind,
            n.recorded
        {
            // Keys below a file can only come from the API, which cannot write while the
            // mount runs: a file found here before is not a directory now.
            return n
        }
        if r.isSelfEntry {
            // The value of a key that is also a directory.
            guard try e?.kind == .directory || hasChildren(r.childPrefix) else { return nil }
            return try fileAt(r.key, entry: e?.kind == .directory ? nil : e)
        }
        if let e, e.kind == .directory {
            guard let rec = try record(e.ino) else { throw Vanished() }
            return Node(ino: e.ino, kind: .directory, key: r.key, record: rec, content: .none, recorded: true)
        }
        if let file = try fileAt(r.key, entry: e) {
            // Below a file only keys put through the API can lie (the mount refuses to create
            // there, and the API writes no entry records), so one keyspace answers.
            let below =
                e != nil && !hasLegacyRecords
                ? try store.containsKey(withPrefix: r.childPrefix, keyspace: .user) : try hasChildren(r.childPrefix)
            return below ? implicitDirectory(r) : file
        }
        if let old = try legacyRecord(r.key, FSKeyspace.legacyNodes) {
            let rec = converted(old)
            return Node(
                ino: InodeNumbers.derived(
                    rec.kind == .directory ? r.childPrefix : r.key, directory: rec.kind == .directory),
                kind: rec.kind, key: r.key, record: rec, content: .none, recorded: false, legacy: true)
        }
        return try hasChildren(r.childPrefix) ? implicitDirectory(r) : nil
    }

    /// `node(r)`, answered from `lookups` when nothing was written since it was resolved: a
    /// change request (unlink, rename, create) names what the kernel's LOOKUP just resolved.
    func knownNode(_ r: PathMapping.Resolved) throws -> Node? {
        let generation = store.changeCount
        if let known = lookups.node(at: r, generation: generation) { return known }
        let found = try node(r)
        lookups.keep(found, at: r, generation: generation)
        return found
    }

    /// Writes a change made under metaLock. When it was the only write meanwhile, the
    /// directories it touched are kept as they are now (the next change in the same directory,
    /// an `rm *` or `mv` loop, finds its parent without reading it). REQUIRES: metaLock.
    private func write(_ batch: WriteBatch, touched: [(Node, PathMapping.Resolved)]) throws {
        let before = store.changeCount
        try store.write(batch, sync: false)
        let after = store.changeCount
        // Directory records change only under metaLock, so even a content commit counted in
        // between would not make them stale; this keeps the rule simple all the same.
        guard after == before &+ 1 else { return }
        for (dir, r) in touched { lookups.keep(dir, at: r, generation: after) }
    }

    /// Attributes of a node without a record.
    func defaultRecord(_ kind: InodeRecord.Kind) -> InodeRecord {
        InodeRecord(
            kind: kind, mode: kind == .directory ? 0o755 : 0o644, uid: defaultUid, gid: defaultGid, time: mountTime)
    }

    /// `stat` of a node. `openSize`: the size of an open file's uncommitted content.
    func attributes(_ n: Node, openSize: UInt64? = nil) throws -> Attributes {
        let rec = n.record ?? defaultRecord(n.kind)
        var size: UInt64 = 0
        var blocks: UInt64 = 0
        var nlink = UInt64(n.recorded || n.content == .chunks ? rec.nlink : 1)
        switch n.kind {
        case .file:
            switch n.content {
            case .chunks:
                size = try openSize ?? n.committedSize ?? content.size(n.ino)
                blocks = (rec.blocks + 4095) / 4096 * 8
            case .plain(let s):
                size = openSize ?? s
                blocks = (size + 511) / 512
            case .none: break
            }
        case .directory:
            size = 4096
            blocks = 8
            nlink = UInt64(2 + (try subdirectories(n)))
        case .symlink:
            size = UInt64(rec.target.count)
        default: break
        }
        return Attributes(
            ino: n.ino, mode: n.kind.typeBits | mode_t(rec.mode), nlink: nlink, uid: rec.uid, gid: rec.gid,
            rdev: rec.rdev, size: size, blocks: blocks, atime: rec.atime, mtime: rec.mtime, ctime: rec.ctime)
    }

    /// Number of subdirectories of a directory (its link count is 2 more).
    private func subdirectories(_ n: Node) throws -> Int {
        if let known = subdirectoryCounts.withLock({ $0[n.ino] }) { return known }
        var count = 0
        try listing(n).forEach { _, mode, _, _ in
            if mode == S_IFDIR { count += 1 }
            return true
        }
        subdirectoryCounts.withLock { counts in
            if counts.count > 4096 { counts.removeAll() }
            counts[n.ino] = count
        }
        return count
    }

    /// Forgets the subdirectory counts of directories that gained or lost a subdirectory.
    private func directoriesChanged(_ dirs: InodeNumber...) {
        subdirectoryCounts.withLock { counts in for d in dirs { counts[d] = nil } }
    }

    // MARK: Listing

    /// The names in a directory, with types and inode numbers: one scan of the content keys,
    /// one of the entries (and one of the first layout's records) below it, each skipping
    /// whole subtrees (a seek each), never walking the store. Without `.`, `..` and control files.
    func listing(
        _ dir: Node, resolved r: PathMapping.Resolved? = nil, startingWith first: DirectoryListing = DirectoryListing()
    ) throws -> DirectoryListing {
        var listing = first
        let r = r ?? PathMapping.Resolved(key: dir.key, isSelfEntry: false, isRoot: dir.ino == InodeNumbers.root)
        let prefix = r.childPrefix
        if r.isPieceDirectory {
            // Inside a long component: each key through this piece, named by its path.
            for ks in nameKeyspaces {
                try store.scan(ks, from: prefix, to: KeyRange.prefix(prefix).end, values: false) { key, _ in
                    let k = Array(key)
                    if let e = PathMapping.entry(ofChild: k, in: r) {
                        let isDir = !e.namesKey || ks == FSKeyspace.legacyNodes
                        listing.add(
                            e.name, isDir ? S_IFDIR : S_IFREG,
                            ino: isDir
                                ? InodeNumbers.derived(k, directory: true) : InodeNumbers.derived(k, directory: false))
                    }
                    return true
                }
            }
            return listing
        }
        if !r.isRoot, !r.key.isEmpty, try store.contentEntry(r.key) != nil {
            listing.add(PathMapping.selfName, S_IFREG, ino: InodeNumbers.derived(r.key, directory: false))
        }
        for ks in nameKeyspaces {
            var start = prefix
            let end = KeyRange.prefix(prefix).end
            while true {
                var skipTo: [UInt8]?
                try store.scan(ks, from: start, to: end, values: ks != .user) { key, value in
                    let rest = UnsafeRawBufferPointer(rebasing: key[prefix.count...])
                    if let slash = rest.firstIndex(of: 0x2f) {
                        let child = Array(rest[..<slash])
                        let name = PathMapping.split(PathMapping.encodeComponent(child[...], topLevel: r.isRoot))[0]
                        listing.add(name, S_IFDIR, ino: InodeNumbers.derived(prefix + child + [0x2f], directory: true))
                        // Jump past the subtree: prefix + child + "0" ('/' + 1).
                        skipTo = prefix + child + [0x30]
                        return false
                    }
                    var kind: mode_t = S_IFREG
                    var ino = InodeNumbers.derived(Array(key), directory: false)
                    if ks == FSKeyspace.entries, let e = EntryRecord.decode(Array(value)) {
                        kind = e.kind.typeBits
                        ino = e.ino
                    } else if ks == FSKeyspace.legacyNodes, let old = NodeRecord.decode(Array(value)) {
                        kind = old.kind == .symlink ? S_IFLNK : S_IFDIR
                        if kind == S_IFDIR { ino = InodeNumbers.derived(Array(key) + [0x2f], directory: true) }
                    } else if ks == .user {
                        // A content key whose entry is recorded gets its number from the entry scan.
                        ino = InodeNumbers.derived(Array(key), directory: false)
                    }
                    if PathMapping.isPlain(rest, topLevel: r.isRoot) {
                        listing.add(rest, kind, ino: ino, authoritative: ks == FSKeyspace.entries)
                    } else {
                        let pieces = PathMapping.split(
                            PathMapping.encodeComponent(Array(rest)[...], topLevel: r.isRoot))
                        listing.add(
                            pieces[0], pieces.count > 1 ? S_IFDIR : kind, ino: ino,
                            authoritative: ks == FSKeyspace.entries && pieces.count == 1)
                    }
                    return true
                }
                guard let next = skipTo else { break }
                start = next
            }
        }
        return listing
    }

    // MARK: Changes

    /// How many inode numbers a mount of a shared store claims at a time.
    static let inodeClaim: UInt64 = 1024

    /// Hands out an inode number; on a store of its own, adds the counter to `batch` (on a
    /// shared one, numbers are claimed from the store ahead, `FileStore.claimInodes`).
    /// REQUIRES: metaLock.
    private func allocate(into batch: inout WriteBatch) throws -> InodeNumber {
        try nextInode.withLock { range in
            if range.isEmpty, let claimed = try store.claimInodes(Namespace.inodeClaim) { range = claimed }
            guard !range.isEmpty else { throw FSError(ENOSPC) }
            let ino = range.lowerBound
            range = (ino + 1)..<range.upperBound
            if !store.sharedWithOtherMounts {
                var v: [UInt8] = []
                withUnsafeBytes(of: (ino + 1).littleEndian) { v.append(contentsOf: $0) }
                batch.put(FSKeyspace.nextInodeKey, v, keyspace: FSKeyspace.meta)
            }
            return ino
        }
    }

    /// Adds `rec` as `n`'s record to `batch`, making `n` recorded (entry written, a first-layout
    /// record removed). REQUIRES: metaLock (and the inode's stripe for a non-directory).
    func putRecord(_ n: Node, _ rec: InodeRecord, into batch: inout WriteBatch) {
        batch.put(FSKeyspace.inodeKey(n.ino), rec.encode(), keyspace: FSKeyspace.inodes)
        if n.ino == InodeNumbers.root { return }
        if !n.recorded && !(n.kind == .file && n.content == .chunks) {
            batch.put(n.key, EntryRecord(ino: n.ino, kind: n.kind).encode(), keyspace: FSKeyspace.entries)
        }
        if n.legacy {
            batch.delete(n.key, keyspace: n.kind == .file ? FSKeyspace.legacyFileAttributes : FSKeyspace.legacyNodes)
        }
    }

    /// Sets a directory's mtime and ctime to `now` (an entry in it was added, removed or
    /// renamed), recording it if it had no record. A piece directory (inside a long name) has
    /// no record of its own. REQUIRES: metaLock.
    /// Returns the directory as it is after the batch.
    @discardableResult
    func touchDirectory(_ dir: Node, now: Timestamp, into batch: inout WriteBatch) -> Node {
        if dir.ino != InodeNumbers.root && dir.key.isEmpty { return dir }
        if dir.ino >= InodeNumbers.derivedBit && !dir.recorded && !dir.legacy,
            dir.ino != InodeNumbers.derived(dir.key + [0x2f], directory: true)
        {
            return dir  // a piece directory
        }
        var rec = dir.record ?? defaultRecord(.directory)
        rec.mtime = now
        rec.ctime = now
        putRecord(dir, rec, into: &batch)
        var after = dir
        after.record = rec
        after.recorded = true
        after.legacy = false
        return after
    }

    /// The mode and group a new node gets: the parent's set-group-ID bit passes its group on
    /// (and the bit itself to directories), as in ext4.
    private func newRecord(
        _ kind: InodeRecord.Kind, mode: mode_t, parent: Node, caller: Caller, now: Timestamp
    ) -> InodeRecord {
        let parentRecord = parent.record ?? defaultRecord(.directory)
        var rec = InodeRecord(kind: kind, mode: UInt32(mode & 0o7777), uid: caller.uid, gid: caller.gid, time: now)
        if parentRecord.mode & UInt32(Glibc.S_ISGID) != 0 {
            rec.gid = parentRecord.gid
            if kind == .directory { rec.mode |= UInt32(Glibc.S_ISGID) }
        }
        return rec
    }

    /// Checks that a new name can be made at `r` in `parent`. REQUIRES: metaLock.
    private func checkCreatable(_ r: PathMapping.Resolved) throws {
        if r.isRoot || r.isSelfEntry || r.key.isEmpty { throw FSError(EEXIST) }
        if r.isPieceDirectory { throw FSError(try hasChildren(r.childPrefix) ? EEXIST : EINVAL) }
        if try knownNode(r) != nil { throw FSError(EEXIST) }
        if r.key.count > Options.maxKeySize { throw FSError(ENAMETOOLONG) }
    }

    /// Makes a node of `kind` at `r` in `parent`: a regular file (empty), directory, symlink
    /// (`target`), FIFO, socket or device (`rdev`). Returns it.
    func create(
        _ kind: InodeRecord.Kind, at r: PathMapping.Resolved, in parentResolved: PathMapping.Resolved,
        mode: mode_t, rdev: UInt64 = 0, target: [UInt8] = [], caller: Caller
    ) throws -> Node {
        try metaLock.withLock { _ in
            guard let parent = try knownNode(parentResolved) else { throw FSError(ENOENT) }
            guard parent.isDirectory else { throw FSError(ENOTDIR) }
            try checkCreatable(r)
            let now = Timestamp.now
            var batch = WriteBatch()
            let ino = try allocate(into: &batch)
            var rec = newRecord(kind, mode: mode, parent: parent, caller: caller, now: now)
            rec.rdev = rdev
            rec.target = target
            batch.put(r.key, EntryRecord(ino: ino, kind: kind).encode(), keyspace: FSKeyspace.entries)
            batch.put(FSKeyspace.inodeKey(ino), rec.encode(), keyspace: FSKeyspace.inodes)
            if kind == .file {
                FileContent.setSize(ino, 0, in: &batch)
                batch.putIndirect(
                    r.key, to: IndirectReference(keyspace: FSKeyspace.chunks, prefix: FSKeyspace.chunkPrefix(ino)))
            }
            let parentAfter = touchDirectory(parent, now: now, into: &batch)
            try write(batch, touched: [(parentAfter, parentResolved)])
            if kind == .directory { directoriesChanged(parent.ino) }
            var made = Node(
                ino: ino, kind: kind, key: r.key, record: rec, content: kind == .file ? .chunks : .none,
                recorded: true)
            if kind == .file { made.committedSize = 0 }
            return made
        }
    }

    /// Adds a name for a non-directory (`link`). An API-written file is first moved into
    /// chunks, since two names must share one content.
    func link(_ r: PathMapping.Resolved, to target: PathMapping.Resolved, in parentResolved: PathMapping.Resolved)
        throws -> Node
    {
        try metaLock.withLock { _ in
            guard var n = try knownNode(target) else { throw FSError(ENOENT) }
            guard !n.isDirectory else { throw FSError(EPERM) }
            guard let parent = try knownNode(parentResolved) else { throw FSError(ENOENT) }
            guard parent.isDirectory else { throw FSError(ENOTDIR) }
            try checkCreatable(r)
            if case .plain = n.content { n = try adopt(n) }
            return try inodeLocks.withLock(n.ino) {
                let now = Timestamp.now
                var batch = WriteBatch()
                var rec = try record(n.ino) ?? n.record ?? defaultRecord(n.kind)
                guard rec.nlink < 65000 else { throw FSError(EMLINK) }
                rec.nlink += 1
                rec.ctime = now
                putRecord(n, rec, into: &batch)
                batch.put(r.key, EntryRecord(ino: n.ino, kind: n.kind).encode(), keyspace: FSKeyspace.entries)
                if n.kind == .file {
                    batch.putIndirect(
                        r.key, to: IndirectReference(keyspace: FSKeyspace.chunks, prefix: FSKeyspace.chunkPrefix(n.ino))
                    )
                }
                let parentAfter = touchDirectory(parent, now: now, into: &batch)
                try write(batch, touched: [(parentAfter, parentResolved)])
                n.record = rec
                n.recorded = true
                return n
            }
        }
    }

    /// The file at `r` with its content in chunks (adopted if it was API-written).
    func adopted(_ n: Node) throws -> Node {
        guard case .plain = n.content else { return n }
        return try metaLock.withLock { _ in
            guard !n.key.isEmpty else { return n }
            guard let current = try fileAt(n.key, entry: entry(n.key)), current.ino == n.ino else {
                throw FSError(ENOENT)
            }
            return try adopt(current)
        }
    }

    /// Moves an API-written file's bytes into chunks under its derived number, with a record:
    /// from now on it is a mount file. Costs one copy of the file, once. REQUIRES: metaLock.
    func adopt(_ n: Node) throws -> Node {
        guard case .plain(let size) = n.content else { return n }
        return try inodeLocks.withLock(n.ino) {
            var batch = WriteBatch()
            var stored: UInt64 = 0
            var buffer = [UInt8](repeating: 0, count: FileContent.chunkSize)
            var index: UInt64 = 0
            while index << UInt64(FileContent.chunkShift) < size {
                let got = try buffer.withUnsafeMutableBytes {
                    try store.read(n.key, keyspace: .user, offset: index << UInt64(FileContent.chunkShift), into: $0)
                        ?? 0
                }
                if got == 0 { break }
                batch.put(FileContent.chunkKey(n.ino, index), Array(buffer[0..<got]), keyspace: FSKeyspace.chunks)
                stored += UInt64(got)
                index += 1
                if batch.count >= 64 {
                    // Chunks of a file no entry points to yet: harmless if the switch below never
                    // happens (the next adoption writes the same keys).
                    try store.write(batch, sync: false)
                    batch = WriteBatch()
                }
            }
            var rec = n.record ?? defaultRecord(.file)
            rec.blocks = stored
            var adopted = n
            adopted.content = .chunks
            FileContent.setSize(n.ino, size, in: &batch)
            batch.putIndirect(
                n.key, to: IndirectReference(keyspace: FSKeyspace.chunks, prefix: FSKeyspace.chunkPrefix(n.ino)))
            batch.put(n.key, EntryRecord(ino: n.ino, kind: .file).encode(), keyspace: FSKeyspace.entries)
            batch.put(FSKeyspace.inodeKey(n.ino), rec.encode(), keyspace: FSKeyspace.inodes)
            if n.legacy { batch.delete(n.key, keyspace: FSKeyspace.legacyFileAttributes) }
            try store.write(batch, sync: false)
            adopted.record = rec
            adopted.recorded = true
            adopted.legacy = false
            return adopted
        }
    }

    /// What an unlink or a replacing rename did to the inode that lost a name.
    struct Unlinked {
        var ino: InodeNumber
        /// The last name went: its content must be freed (`purge`) once no handle is open.
        var orphaned: Bool
        /// The last name went and the content was freed in the same batch (`unlink`'s `freeNow`).
        var freed = false
    }

    /// Largest file an unlink frees in its own batch (its chunk deletions go in that batch);
    /// larger ones are freed by `purge`, in as many batches as they need.
    static let freeAtUnlinkMax: UInt64 = 4 << 20

    /// Removes the name of a non-directory at `r` into `batch`. `freeNow(ino)`: whether the
    /// inode, if this was its last name, may be freed in the same batch (nothing has it open;
    /// the caller marks it so no open can start). REQUIRES: metaLock.
    private func removeName(
        _ n: Node, now: Timestamp, into batch: inout WriteBatch, freeNow: (InodeNumber) -> Bool = { _ in false }
    ) throws -> Unlinked {
        if n.recorded { batch.delete(n.key, keyspace: FSKeyspace.entries) }
        if n.kind == .file { batch.delete(n.key, keyspace: .user) }
        if n.legacy {
            batch.delete(n.key, keyspace: n.kind == .file ? FSKeyspace.legacyFileAttributes : FSKeyspace.legacyNodes)
        }
        guard n.recorded || n.content == .chunks else { return Unlinked(ino: n.ino, orphaned: false) }
        return try inodeLocks.withLock(n.ino) {
            guard var rec = try record(n.ino) else { return Unlinked(ino: n.ino, orphaned: false) }
            rec.nlink = rec.nlink > 0 ? rec.nlink - 1 : 0
            rec.ctime = now
            batch.put(FSKeyspace.inodeKey(n.ino), rec.encode(), keyspace: FSKeyspace.inodes)
            if rec.nlink == 0 {
                if n.kind == .file, n.content == .chunks, let size = n.committedSize, size <= Namespace.freeAtUnlinkMax,
                    freeNow(n.ino)
                {
                    // Nothing has it open: its chunks, header and record go in this batch (one
                    // write where the unlink and a purge at FORGET made two).
                    var chunks = WriteBatch()
                    _ = try content.deleteChunks(n.ino, from: 0, in: &chunks, counting: false) { _ in }
                    batch.append(contentsOf: chunks)
                    batch.delete(FileContent.headerKey(n.ino), keyspace: FSKeyspace.chunks)
                    batch.delete(FSKeyspace.inodeKey(n.ino), keyspace: FSKeyspace.inodes)
                    return Unlinked(ino: n.ino, orphaned: false, freed: true)
                }
                // Freed by `purge`, now or at the last close; the marker frees it after a crash.
                batch.put(FSKeyspace.orphanKey(n.ino), [], keyspace: FSKeyspace.meta)
                return Unlinked(ino: n.ino, orphaned: true)
            }
            return Unlinked(ino: n.ino, orphaned: false)
        }
    }

    func unlink(
        _ r: PathMapping.Resolved, in parentResolved: PathMapping.Resolved,
        freeNow: (InodeNumber) -> Bool = { _ in false }
    ) throws -> Unlinked {
        try metaLock.withLock { _ in
            guard let n = try knownNode(r) else { throw FSError(ENOENT) }
            if n.isDirectory { throw FSError(EISDIR) }
            guard let parent = try knownNode(parentResolved) else { throw FSError(ENOENT) }
            let now = Timestamp.now
            var batch = WriteBatch()
            batch.freesSpace = true  // an rm works on a full disk (the store's space reserve)
            let result = try removeName(n, now: now, into: &batch, freeNow: freeNow)
            let parentAfter = touchDirectory(parent, now: now, into: &batch)
            try write(batch, touched: [(parentAfter, parentResolved)])
            return result
        }
    }

    func rmdir(_ r: PathMapping.Resolved, in parentResolved: PathMapping.Resolved) throws -> InodeNumber {
        try metaLock.withLock { _ in
            if r.isRoot { throw FSError(EBUSY) }
            guard let n = try knownNode(r) else { throw FSError(ENOENT) }
            guard n.isDirectory else { throw FSError(ENOTDIR) }
            if try hasChildren(r.childPrefix) || (!r.isPieceDirectory && store.contentEntry(r.key) != nil) {
                throw FSError(ENOTEMPTY)
            }
            guard let parent = try knownNode(parentResolved) else { throw FSError(ENOENT) }
            let now = Timestamp.now
            var batch = WriteBatch()
            batch.freesSpace = true
            if n.recorded {
                batch.delete(n.key, keyspace: FSKeyspace.entries)
                batch.delete(FSKeyspace.inodeKey(n.ino), keyspace: FSKeyspace.inodes)
            }
            if n.legacy { batch.delete(n.key, keyspace: FSKeyspace.legacyNodes) }
            let parentAfter = touchDirectory(parent, now: now, into: &batch)
            try write(batch, touched: [(parentAfter, parentResolved)])
            directoriesChanged(parent.ino)
            return n.ino
        }
    }

    /// Frees an inode that lost its last name: its record and header first (so no reader, on
    /// this mount or another of a shared store, ever finds a file whose chunks are half gone:
    /// it finds none), then its chunks, then the orphan marker (last, so a crash in between
    /// leaves it for the next mount, whose purge finds what is left). REQUIRES: no name, handle
    /// or kernel lookup reaches it (so its writes are `writeUnreachable`).
    func purge(_ ino: InodeNumber) throws {
        try inodeLocks.withLock(ino) {
            var first = WriteBatch()
            first.freesSpace = true
            first.delete(FileContent.headerKey(ino), keyspace: FSKeyspace.chunks)
            first.delete(FSKeyspace.inodeKey(ino), keyspace: FSKeyspace.inodes)
            try store.writeUnreachable(first)
            var batch = WriteBatch()
            batch.freesSpace = true
            _ = try content.deleteChunks(ino, from: 0, in: &batch, counting: false) { b in
                try store.writeUnreachable(b)
                b = WriteBatch()
                b.freesSpace = true
            }
            batch.delete(FSKeyspace.orphanKey(ino), keyspace: FSKeyspace.meta)
            try store.writeUnreachable(batch)
        }
    }

    /// Inodes left unlinked-while-open by a process that died (freed at mount).
    func orphans() throws -> [InodeNumber] {
        var found: [InodeNumber] = []
        let prefix = FSKeyspace.orphanPrefix
        try store.scan(FSKeyspace.meta, from: prefix, to: KeyRange.prefix(prefix).end, values: false) { key, _ in
            if let ino = FSKeyspace.decodeInode(key.suffix(8)) { found.append(ino) }
            return true
        }
        return found
    }

    // MARK: Attributes

    /// Read-modify-write of a node's record (made if it had none); ctime is set to now.
    /// Returns the node as it is after.
    func updateRecord(_ r: PathMapping.Resolved?, ino: InodeNumber, _ change: (inout InodeRecord) throws -> Void)
        throws -> Node
    {
        try metaLock.withLock { _ in
            guard var n = try r.flatMap({ try knownNode($0) }) ?? nodeByNumber(ino) else { throw FSError(ENOENT) }
            return try inodeLocks.withLock(n.ino) {
                var rec =
                    try (n.recorded || n.content == .chunks ? record(n.ino) : nil) ?? n.record
                    ?? defaultRecord(n.kind)
                try change(&rec)
                rec.ctime = .now
                var batch = WriteBatch()
                putRecord(n, rec, into: &batch)
                try store.write(batch, sync: false)
                n.record = rec
                if n.ino != InodeNumbers.root { n.recorded = n.recorded || !(n.kind == .file && n.content == .chunks) }
                return n
            }
        }
    }

    /// A node known only by number: an inode with a record whose names are unknown here (an
    /// open file unlinked since). nil when there is no record.
    func nodeByNumber(_ ino: InodeNumber) throws -> Node? {
        if ino == InodeNumbers.root { return try root() }
        guard let rec = try record(ino) else { return nil }
        return Node(
            ino: ino, kind: rec.kind, key: [], record: rec, content: rec.kind == .file ? .chunks : .none,
            recorded: true)
    }

    // MARK: Rename

    /// A rename onto `dir/%=`, the value of a key that is also a directory: the file's content
    /// becomes the key's value; its entry record goes (the key's record is the directory's),
    /// and the indirect entry keeps its inode alive. REQUIRES: metaLock.
    private func renameOntoOwnValue(
        _ from: Node, src: PathMapping.Resolved, in srcParentResolved: PathMapping.Resolved,
        to dst: PathMapping.Resolved, flags: UInt32
    ) throws -> Renamed? {
        if from.isDirectory { throw FSError(ENOTDIR) }
        guard from.kind == .file, flags & slice_rename_exchange == 0 else { throw FSError(EINVAL) }
        let to = try knownNode(dst)
        if to != nil && flags & slice_rename_noreplace != 0 { throw FSError(EEXIST) }
        if to?.ino == from.ino { return nil }
        guard let srcParent = try knownNode(srcParentResolved) else { throw FSError(ENOENT) }
        let now = Timestamp.now
        var batch = WriteBatch()
        var lost: Unlinked?
        if let to {
            var value = to
            value.recorded = false  // the key's entry record (if any) is the directory's
            lost = try removeName(value, now: now, into: &batch)
        }
        guard let stored = try store.storedValue(from.key) else { throw FSError(ENOENT) }
        batch.delete(from.key, keyspace: .user)
        if from.recorded { batch.delete(from.key, keyspace: FSKeyspace.entries) }
        if from.legacy { batch.delete(from.key, keyspace: FSKeyspace.legacyFileAttributes) }
        batch.put(dst.key, stored, keyspace: .user)
        if from.recorded || from.content == .chunks {
            try inodeLocks.withLock(from.ino) {
                if var rec = try record(from.ino) {
                    rec.ctime = now
                    batch.put(FSKeyspace.inodeKey(from.ino), rec.encode(), keyspace: FSKeyspace.inodes)
                }
            }
        }
        let parentAfter = touchDirectory(srcParent, now: now, into: &batch)
        try write(batch, touched: [(parentAfter, srcParentResolved)])
        var moved = from
        moved.key = dst.key
        moved.recorded = false
        return Renamed(moved: moved, target: to, lost: lost)
    }

    /// One key to move: where from, where to, and its value.
    private struct Move {
        enum Value {
            case stored(StoredValue)
            case bytes([UInt8])
        }
        var keyspace: Keyspace
        var key: [UInt8]
        var newKey: [UInt8]
        var value: Value
    }

    /// The moves that take every key of `from` (and below it, for a directory) to the same
    /// place under `toKey`, in content, entries and first-layout records. Content moves by
    /// reference (a blob or an indirect entry is not copied). REQUIRES: metaLock.
    private func moves(_ from: Node, to toKey: [UInt8]) throws -> [Move] {
        let keyspaces = nameKeyspaces + (hasLegacyRecords ? [FSKeyspace.legacyFileAttributes] : [])
        var result: [Move] = []
        func moveOne(_ key: [UInt8], _ newKey: [UInt8], _ ks: Keyspace) throws {
            if ks == .user {
                guard let v = try store.storedValue(key) else { return }
                result.append(Move(keyspace: ks, key: key, newKey: newKey, value: .stored(v)))
            } else {
                guard let v = try store.get(key, keyspace: ks) else { return }
                result.append(Move(keyspace: ks, key: key, newKey: newKey, value: .bytes(v)))
            }
        }
        for ks in keyspaces { try moveOne(from.key, toKey, ks) }
        guard from.isDirectory else { return result }
        let prefix = from.key + [0x2f]
        for ks in keyspaces {
            var keys: [[UInt8]] = []
            try store.scan(ks, from: prefix, to: KeyRange.prefix(prefix).end, values: false) { key, _ in
                keys.append(Array(key))
                return true
            }
            for key in keys { try moveOne(key, toKey + [0x2f] + key[prefix.count...], ks) }
        }
        return result
    }

    /// Adds `moves` to `batch`: every delete before any put, so moves that swap keys work.
    private func apply(_ moves: [Move], into batch: inout WriteBatch) {
        for m in moves { batch.delete(m.key, keyspace: m.keyspace) }
        for m in moves {
            switch m.value {
            case .stored(let v): batch.put(m.newKey, v, keyspace: m.keyspace)
            case .bytes(let v): batch.put(m.newKey, v, keyspace: m.keyspace)
            }
        }
    }

    /// What a rename did: the node moved, the node at the destination (exchanged or replaced),
    /// and the inode that lost its last name to a replacing rename.
    struct Renamed {
        var moved: Node
        var target: Node?
        var lost: Unlinked?
    }

    /// `rename(2)` with `RENAME_NOREPLACE` / `RENAME_EXCHANGE`; nil when nothing changed. A directory's rename rewrites every key
    /// below it (one batch, atomic): time proportional to the subtree.
    func rename(
        _ src: PathMapping.Resolved, in srcParentResolved: PathMapping.Resolved, to dst: PathMapping.Resolved,
        in dstParentResolved: PathMapping.Resolved, flags: UInt32
    ) throws -> Renamed? {
        try metaLock.withLock { _ in
            guard let from = try knownNode(src) else { throw FSError(ENOENT) }
            if src.isRoot || dst.isRoot { throw FSError(EBUSY) }
            if src.isSelfEntry || src.isPieceDirectory || dst.isPieceDirectory || src.key.isEmpty || dst.key.isEmpty {
                throw FSError(EINVAL)
            }
            if dst.isSelfEntry {
                return try renameOntoOwnValue(from, src: src, in: srcParentResolved, to: dst, flags: flags)
            }
            if dst.key.count > Options.maxKeySize { throw FSError(ENAMETOOLONG) }
            // Within one directory (the common rename) its node is resolved once.
            guard let srcParent = try knownNode(srcParentResolved),
                let dstParent = dstParentResolved == srcParentResolved ? srcParent : try knownNode(dstParentResolved)
            else {
                throw FSError(ENOENT)
            }
            guard dstParent.isDirectory else { throw FSError(ENOTDIR) }
            let to = try knownNode(dst)
            if src.key == dst.key { return nil }
            if from.isDirectory, dst.key.starts(with: src.key + [0x2f]) { throw FSError(EINVAL) }
            if let to, to.isDirectory, src.key.starts(with: dst.key + [0x2f]) {
                throw FSError(flags & slice_rename_exchange != 0 ? EINVAL : ENOTEMPTY)
            }
            let now = Timestamp.now
            var batch = WriteBatch()
            var lost: Unlinked?
            if flags & slice_rename_exchange != 0 {
                guard let to else { throw FSError(ENOENT) }
                // Both subtrees move: every delete goes before any put.
                apply(try moves(from, to: dst.key) + moves(to, to: src.key), into: &batch)
            } else {
                if let to {
                    if flags & slice_rename_noreplace != 0 { throw FSError(EEXIST) }
                    if from.isDirectory {
                        guard to.isDirectory else { throw FSError(ENOTDIR) }
                        if try hasChildren(dst.childPrefix) || store.contentEntry(dst.key) != nil {
                            throw FSError(ENOTEMPTY)
                        }
                        if to.recorded {
                            batch.delete(to.key, keyspace: FSKeyspace.entries)
                            batch.delete(FSKeyspace.inodeKey(to.ino), keyspace: FSKeyspace.inodes)
                        }
                        if to.legacy { batch.delete(to.key, keyspace: FSKeyspace.legacyNodes) }
                    } else {
                        if to.isDirectory { throw FSError(EISDIR) }
                        if to.ino == from.ino {
                            // Two names of one inode: rename does nothing (POSIX).
                            return nil
                        }
                        lost = try removeName(to, now: now, into: &batch)
                    }
                }
                apply(try moves(from, to: dst.key), into: &batch)
            }
            // The moved inode's ctime changes; recordless nodes get a record for it.
            var moved = from
            moved.key = dst.key
            if from.isDirectory || from.recorded || from.content == .chunks || from.legacy {
                try inodeLocks.withLock(from.ino) {
                    var rec =
                        try (from.recorded || from.content == .chunks ? record(from.ino) : nil) ?? from.record
                        ?? defaultRecord(from.kind)
                    rec.ctime = now
                    var recordNode = moved
                    recordNode.legacy = false
                    putRecord(recordNode, rec, into: &batch)
                }
            }
            var touched = [(touchDirectory(srcParent, now: now, into: &batch), srcParentResolved)]
            if dstParent.ino != srcParent.ino {
                touched.append((touchDirectory(dstParent, now: now, into: &batch), dstParentResolved))
            }
            try write(batch, touched: touched)
            if from.isDirectory || to?.isDirectory == true { directoriesChanged(srcParent.ino, dstParent.ino) }
            return Renamed(moved: moved, target: to, lost: lost)
        }
    }
}
