import CFuse
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A complete filesystem in memory, with no store behind it: what the FUSE bridge costs by
/// itself. Tests use it to check the bridge through the kernel; benchmarks mount it
/// (`slice null-mount`) as the ceiling a filesystem answering from memory can reach.
///
/// Regular files (bytes in memory, at most `maxFileSize` each: EFBIG past it), directories,
/// symbolic links, hard links, FIFOs, sockets and device nodes, extended attributes, rename
/// with `RENAME_NOREPLACE` and `RENAME_EXCHANGE`. Times follow POSIX: a change of content sets
/// mtime and ctime, a change of attributes or links ctime, a read atime; a directory's mtime
/// and ctime change with its entries. Permissions are the kernel's to check
/// (`default_permissions`); `access` answers from the mode bits for mounts without it.
///
/// Inode numbers are never reused (generation 0). An inode lives while it has links, kernel
/// lookups (`forget` gives them back) or open handles. One mutex guards everything.
public final class NullFileSystem: LowLevelOperations {
    /// The largest file: writes, truncates and allocations past it fail with EFBIG.
    public static let maxFileSize = 1 << 30
    /// Attribute and entry timeouts, negative entries too: every change comes through the
    /// kernel, so what it caches stays true.
    public static let timeout = 1.0

    private final class Node {
        let ino: InodeNumber
        var mode: mode_t
        var nlink: UInt64
        var uid: uid_t
        var gid: gid_t
        var rdev: UInt64 = 0
        var atime: Timestamp
        var mtime: Timestamp
        var ctime: Timestamp
        /// A regular file's bytes, or a symbolic link's target.
        var data: [UInt8] = []
        /// A directory's entries, and its parent (the root is its own).
        var children: [[UInt8]: InodeNumber] = [:]
        var parent: InodeNumber
        var xattrs: [[UInt8]: [UInt8]] = [:]
        /// References the kernel holds (entry replies not yet forgotten).
        var lookups: UInt64 = 0
        /// Open file or directory handles.
        var opens = 0

        init(ino: InodeNumber, mode: mode_t, uid: uid_t, gid: gid_t, parent: InodeNumber, now: Timestamp) {
            self.ino = ino
            self.mode = mode
            self.nlink = mode & S_IFMT == S_IFDIR ? 2 : 1
            self.uid = uid
            self.gid = gid
            self.parent = parent
            (atime, mtime, ctime) = (now, now, now)
        }

        var type: mode_t { mode & S_IFMT }
        var isDirectory: Bool { type == S_IFDIR }

        var attributes: Attributes {
            let size: UInt64 = isDirectory ? 4096 : UInt64(data.count)
            let blocks: UInt64 = type == S_IFREG ? (size + 511) / 512 : (isDirectory ? 8 : 0)
            return Attributes(
                ino: ino, mode: mode, nlink: nlink, uid: uid, gid: gid, rdev: rdev, size: size, blocks: blocks,
                atime: atime, mtime: mtime, ctime: ctime)
        }

        var entry: EntryReply {
            EntryReply(
                ino: ino, attributes: attributes, attrTimeout: NullFileSystem.timeout,
                entryTimeout: NullFileSystem.timeout)
        }

        /// Sets the size, zero-filling what grows.
        func resize(to size: Int) {
            if size < data.count {
                if size == 0 { data = [] } else { data.removeLast(data.count - size) }
            } else if size > data.count {
                data.append(contentsOf: repeatElement(0, count: size - data.count))
            }
        }
    }

    private struct State {
        var nodes: [InodeNumber: Node] = [:]
        var nextIno: InodeNumber = 2
        var nextHandle: UInt64 = 1
        /// Each open directory's listing, taken when it is read from the start (offset 0) so
        /// that offsets stay valid while entries come and go.
        var listings: [UInt64: [(name: [UInt8], ino: InodeNumber)]] = [:]

        func node(_ ino: InodeNumber) throws -> Node {
            guard let node = nodes[ino] else { throw FSError(ESTALE) }
            return node
        }

        func directory(_ ino: InodeNumber) throws -> Node {
            let node = try node(ino)
            guard node.isDirectory else { throw FSError(ENOTDIR) }
            return node
        }

        func file(_ ino: InodeNumber) throws -> Node {
            let node = try node(ino)
            guard !node.isDirectory else { throw FSError(EISDIR) }
            guard node.type == S_IFREG else { throw FSError(EINVAL) }
            return node
        }

        mutating func handle() -> UInt64 {
            defer { nextHandle += 1 }
            return nextHandle
        }

        /// Drops an inode nothing refers to any more.
        mutating func release(_ node: Node) {
            if node.nlink == 0 && node.lookups == 0 && node.opens == 0 && node.ino != rootIno {
                nodes[node.ino] = nil
            }
        }

        /// A new inode named `name` in `parent`, with one lookup for the entry reply.
        mutating func add(
            _ name: [UInt8], in parent: Node, mode: mode_t, caller: Caller, rdev: UInt64 = 0, data: [UInt8] = []
        ) throws -> Node {
            try checkName(name)
            guard parent.nlink > 0 else { throw FSError(ENOENT) }  // removed while in use
            guard parent.children[name] == nil else { throw FSError(EEXIST) }
            var mode = mode
            var gid = caller.gid
            if parent.mode & S_ISGID != 0 {  // BSD group semantics below a set-group-ID directory
                gid = parent.gid
                if mode & S_IFMT == S_IFDIR { mode |= S_ISGID }
            }
            let now = Timestamp.now
            let node = Node(ino: nextIno, mode: mode, uid: caller.uid, gid: gid, parent: parent.ino, now: now)
            nextIno += 1
            node.rdev = rdev
            node.data = data
            node.lookups = 1
            nodes[node.ino] = node
            parent.children[name] = node.ino
            if node.isDirectory { parent.nlink += 1 }
            (parent.mtime, parent.ctime) = (now, now)
            return node
        }

        /// Whether `ino` is `dir` or one of its ancestors (a directory cannot move below itself).
        func isAncestor(_ ino: InodeNumber, of dir: InodeNumber) -> Bool {
            var at = dir
            while true {
                if at == ino { return true }
                guard at != rootIno, let node = nodes[at] else { return false }
                at = node.parent
            }
        }
    }

    private let state: Mutex<State>

    public init(uid: uid_t = getuid(), gid: gid_t = getgid()) {
        var s = State()
        let root = Node(
            ino: rootIno, mode: S_IFDIR | 0o755, uid: uid, gid: gid, parent: rootIno, now: .now)
        s.nodes[root.ino] = root
        state = Mutex(s)
    }

    public func mounted() {}
    public func unmounting() {}

    // MARK: Names and inodes

    public func lookup(parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        try state.withLock { s in
            let dir = try s.directory(parent)
            guard name.count <= 255 else { throw FSError(ENAMETOOLONG) }
            let ino: InodeNumber
            if name == [0x2E] {
                ino = dir.ino
            } else if name == [0x2E, 0x2E] {
                ino = dir.parent
            } else if let child = dir.children[name] {
                ino = child
            } else {
                return .negative(timeout: Self.timeout)
            }
            let node = try s.node(ino)
            node.lookups += 1
            return node.entry
        }
    }

    public func forget(_ ino: InodeNumber, lookups: UInt64) {
        state.withLock { s in
            guard let node = s.nodes[ino] else { return }
            node.lookups -= min(node.lookups, lookups)
            s.release(node)
        }
    }

    public func getattr(_ ino: InodeNumber, fh: UInt64?, caller: Caller) throws -> (Attributes, timeout: Double) {
        try state.withLock { s in (try s.node(ino).attributes, Self.timeout) }
    }

    public func setattr(_ ino: InodeNumber, _ changes: AttributeChanges, fh: UInt64?, caller: Caller) throws -> (
        Attributes, timeout: Double
    ) {
        try state.withLock { s in
            let node = try s.node(ino)
            let now = Timestamp.now
            if let size = changes.size {
                let file = try s.file(ino)
                guard size <= UInt64(Self.maxFileSize) else { throw FSError(EFBIG) }
                file.resize(to: Int(size))
                file.mtime = now
            }
            if let mode = changes.mode { node.mode = node.type | (mode & 0o7777) }
            if let uid = changes.uid { node.uid = uid }
            if let gid = changes.gid { node.gid = gid }
            if changes.killSetID {
                node.mode &= ~S_ISUID
                if node.mode & S_IXGRP != 0 { node.mode &= ~S_ISGID }  // without group x: a lock mark
            }
            switch changes.atime {
            case .now: node.atime = now
            case .set(let t): node.atime = t
            case nil: break
            }
            switch changes.mtime {
            case .now: node.mtime = now
            case .set(let t): node.mtime = t
            case nil: break
            }
            node.ctime = now
            return (node.attributes, Self.timeout)
        }
    }

    public func readlink(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        try state.withLock { s in
            let node = try s.node(ino)
            guard node.type == S_IFLNK else { throw FSError(EINVAL) }
            return node.data
        }
    }

    public func mknod(parent: InodeNumber, name: [UInt8], mode: mode_t, rdev: UInt64, caller: Caller) throws
        -> EntryReply
    {
        switch mode & S_IFMT {
        case S_IFREG, S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK: break
        case S_IFDIR: throw FSError(EPERM)
        default: throw FSError(EINVAL)
        }
        let rdev = mode & S_IFMT == S_IFCHR || mode & S_IFMT == S_IFBLK ? rdev : 0
        return try state.withLock { s in
            try s.add(name, in: try s.directory(parent), mode: mode, caller: caller, rdev: rdev).entry
        }
    }

    public func mkdir(parent: InodeNumber, name: [UInt8], mode: mode_t, caller: Caller) throws -> EntryReply {
        try state.withLock { s in
            try s.add(name, in: try s.directory(parent), mode: S_IFDIR | (mode & 0o7777), caller: caller).entry
        }
    }

    public func unlink(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        try state.withLock { s in
            let dir = try s.directory(parent)
            guard let ino = dir.children[name] else { throw FSError(ENOENT) }
            let node = try s.node(ino)
            guard !node.isDirectory else { throw FSError(EISDIR) }
            let now = Timestamp.now
            dir.children[name] = nil
            (dir.mtime, dir.ctime) = (now, now)
            node.nlink -= 1
            node.ctime = now
            s.release(node)
        }
    }

    public func rmdir(parent: InodeNumber, name: [UInt8], caller: Caller) throws {
        try state.withLock { s in
            let dir = try s.directory(parent)
            if name == [0x2E] { throw FSError(EINVAL) }
            guard let ino = dir.children[name] else { throw FSError(name == [0x2E, 0x2E] ? ENOTEMPTY : ENOENT) }
            let node = try s.directory(ino)
            guard node.children.isEmpty else { throw FSError(ENOTEMPTY) }
            let now = Timestamp.now
            dir.children[name] = nil
            dir.nlink -= 1
            (dir.mtime, dir.ctime) = (now, now)
            node.nlink = 0
            node.ctime = now
            s.release(node)
        }
    }

    public func symlink(target: [UInt8], parent: InodeNumber, name: [UInt8], caller: Caller) throws -> EntryReply {
        try state.withLock { s in
            try s.add(name, in: try s.directory(parent), mode: S_IFLNK | 0o777, caller: caller, data: target).entry
        }
    }

    public func rename(
        parent: InodeNumber, name: [UInt8], newParent: InodeNumber, newName: [UInt8], flags: UInt32, caller: Caller
    ) throws {
        let noReplace = flags & slice_rename_noreplace != 0
        let exchange = flags & slice_rename_exchange != 0
        guard flags & ~(slice_rename_noreplace | slice_rename_exchange) == 0, !(noReplace && exchange) else {
            throw FSError(EINVAL)
        }
        try state.withLock { s in
            let from = try s.directory(parent)
            let to = try s.directory(newParent)
            try checkName(newName)
            guard let ino = from.children[name] else { throw FSError(ENOENT) }
            let node = try s.node(ino)
            let targetIno = to.children[newName]
            let target = try targetIno.map { try s.node($0) }
            let now = Timestamp.now
            if exchange {
                guard let target else { throw FSError(ENOENT) }
                if target === node { return }
                if node.isDirectory && s.isAncestor(ino, of: to.ino) { throw FSError(EINVAL) }
                if target.isDirectory && s.isAncestor(target.ino, of: from.ino) { throw FSError(EINVAL) }
                from.children[name] = target.ino
                to.children[newName] = ino
                if node.isDirectory { (from.nlink, to.nlink, node.parent) = (from.nlink - 1, to.nlink + 1, to.ino) }
                if target.isDirectory {
                    (to.nlink, from.nlink, target.parent) = (to.nlink - 1, from.nlink + 1, from.ino)
                }
                (node.ctime, target.ctime) = (now, now)
                (from.mtime, from.ctime, to.mtime, to.ctime) = (now, now, now, now)
                return
            }
            if let target {
                guard !noReplace else { throw FSError(EEXIST) }
                if target === node { return }  // two links to one file: POSIX says do nothing
                if node.isDirectory {
                    guard target.isDirectory else { throw FSError(ENOTDIR) }
                    guard target.children.isEmpty else { throw FSError(ENOTEMPTY) }
                } else if target.isDirectory {
                    throw FSError(EISDIR)
                }
            }
            if node.isDirectory && s.isAncestor(ino, of: to.ino) { throw FSError(EINVAL) }
            if let target {
                if target.isDirectory {
                    target.nlink = 0
                    to.nlink -= 1
                } else {
                    target.nlink -= 1
                }
                target.ctime = now
                s.release(target)
            }
            from.children[name] = nil
            to.children[newName] = ino
            if node.isDirectory {
                (from.nlink, to.nlink, node.parent) = (from.nlink - 1, to.nlink + 1, to.ino)
            }
            node.ctime = now
            (from.mtime, from.ctime, to.mtime, to.ctime) = (now, now, now, now)
        }
    }

    public func link(_ ino: InodeNumber, newParent: InodeNumber, newName: [UInt8], caller: Caller) throws
        -> EntryReply
    {
        try state.withLock { s in
            let node = try s.node(ino)
            guard !node.isDirectory else { throw FSError(EPERM) }
            guard node.nlink > 0 else { throw FSError(ENOENT) }
            let dir = try s.directory(newParent)
            try checkName(newName)
            guard dir.children[newName] == nil else { throw FSError(EEXIST) }
            let now = Timestamp.now
            dir.children[newName] = ino
            (dir.mtime, dir.ctime) = (now, now)
            node.nlink += 1
            node.ctime = now
            node.lookups += 1
            return node.entry
        }
    }

    // MARK: Files

    public func open(_ ino: InodeNumber, flags: Int32, caller: Caller) throws -> OpenReply {
        try state.withLock { s in
            let node = try s.node(ino)
            guard !node.isDirectory else { throw FSError(EISDIR) }
            // The kernel hands O_TRUNC over (atomic_o_trunc): no separate SETATTR follows. Linux
            // truncates on O_RDONLY|O_TRUNC too (after checking write permission).
            if flags & O_TRUNC != 0 && node.type == S_IFREG {
                node.resize(to: 0)
                let now = Timestamp.now
                (node.mtime, node.ctime) = (now, now)
            }
            node.opens += 1
            // Nothing changes a file behind the kernel's back: its cached pages stay valid.
            return OpenReply(fh: s.handle(), keepCache: true)
        }
    }

    public func create(parent: InodeNumber, name: [UInt8], mode: mode_t, flags: Int32, caller: Caller) throws -> (
        EntryReply, OpenReply
    ) {
        try state.withLock { s in
            let node = try s.add(name, in: try s.directory(parent), mode: S_IFREG | (mode & 0o7777), caller: caller)
            node.opens = 1
            return (node.entry, OpenReply(fh: s.handle(), keepCache: true))
        }
    }

    public func read(_ ino: InodeNumber, fh: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws
        -> Int
    {
        try state.withLock { s in
            let file = try s.file(ino)
            file.atime = .now
            guard offset < UInt64(file.data.count) else { return 0 }
            let start = Int(offset)
            let n = min(buffer.count, file.data.count - start)
            file.data.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + start, byteCount: n) }
            return n
        }
    }

    public func write(_ ino: InodeNumber, fh: UInt64, offset: UInt64, data: UnsafeRawBufferPointer, caller: Caller)
        throws -> Int
    {
        guard offset + UInt64(data.count) <= UInt64(Self.maxFileSize) else { throw FSError(EFBIG) }
        return try state.withLock { s in
            let file = try s.file(ino)
            let start = Int(offset)
            if start > file.data.count { file.resize(to: start) }
            let overlap = min(data.count, file.data.count - start)
            if overlap > 0 {
                file.data.withUnsafeMutableBytes {
                    ($0.baseAddress! + start).copyMemory(from: data.baseAddress!, byteCount: overlap)
                }
            }
            if overlap < data.count { file.data.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[overlap...])) }
            let now = Timestamp.now
            (file.mtime, file.ctime) = (now, now)
            return data.count
        }
    }

    public func flush(_ ino: InodeNumber, fh: UInt64, caller: Caller) throws {}

    public func release(_ ino: InodeNumber, fh: UInt64) {
        state.withLock { s in
            guard let node = s.nodes[ino] else { return }
            node.opens -= 1
            s.release(node)
        }
    }

    public func fsync(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws {}

    public func fallocate(_ ino: InodeNumber, fh: UInt64, mode: Int32, offset: UInt64, length: UInt64) throws {
        let keepSize = mode & slice_falloc_keep_size != 0
        let zero = mode & (slice_falloc_punch_hole | slice_falloc_zero_range) != 0
        guard mode & ~(slice_falloc_keep_size | slice_falloc_punch_hole | slice_falloc_zero_range) == 0,
            mode & slice_falloc_punch_hole == 0 || keepSize
        else { throw FSError(EOPNOTSUPP) }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= UInt64(Self.maxFileSize) || keepSize else { throw FSError(EFBIG) }
        try state.withLock { s in
            let file = try s.file(ino)
            let now = Timestamp.now
            if zero, offset < UInt64(file.data.count) {
                let upper = Int(min(end, UInt64(file.data.count)))
                file.data.withUnsafeMutableBytes {
                    _ = memset($0.baseAddress! + Int(offset), 0, upper - Int(offset))
                }
                (file.mtime, file.ctime) = (now, now)
            }
            if !keepSize && end > UInt64(file.data.count) {
                file.resize(to: Int(end))
                (file.mtime, file.ctime) = (now, now)
            }
        }
    }

    /// Every byte is data: the only hole is the virtual one at the end.
    public func lseek(_ ino: InodeNumber, fh: UInt64, offset: UInt64, whence: Int32) throws -> UInt64 {
        try state.withLock { s in
            let size = UInt64(try s.file(ino).data.count)
            guard offset < size else { throw FSError(ENXIO) }
            switch whence {
            case slice_seek_data: return offset
            case slice_seek_hole: return size
            default: throw FSError(EINVAL)
            }
        }
    }

    // MARK: Directories

    public func opendir(_ ino: InodeNumber, caller: Caller) throws -> OpenReply {
        try state.withLock { s in
            let dir = try s.directory(ino)
            dir.opens += 1
            return OpenReply(fh: s.handle())
        }
    }

    public func readdir(
        _ ino: InodeNumber, fh: UInt64, offset: Int64, plus: Bool, fill: (DirectoryEntry) -> Bool
    ) throws {
        try state.withLock { s in
            let dir = try s.directory(ino)
            if offset == 0 || s.listings[fh] == nil {
                var listing = [(name: [UInt8], ino: InodeNumber)]()
                listing.reserveCapacity(dir.children.count + 2)
                listing.append(([0x2E], dir.ino))
                listing.append(([0x2E, 0x2E], dir.parent))
                listing += dir.children.map { (name: $0.key, ino: $0.value) }.sorted {
                    $0.name.lexicographicallyPrecedes($1.name)
                }
                s.listings[fh] = listing
                dir.atime = .now
            }
            let listing = s.listings[fh]!
            var index = Int(clamping: max(offset, 0))
            while index < listing.count {
                let (name, child) = listing[index]
                index += 1
                guard let node = s.nodes[child] else { continue }  // gone since the listing was taken
                let dots = index <= 2
                var entry = DirectoryEntry(name: name, ino: child, type: node.type, nextOffset: Int64(index))
                if plus && !dots { entry.entry = node.entry }
                guard fill(entry) else { return }
                if plus && !dots { node.lookups += 1 }
            }
        }
    }

    public func releasedir(_ ino: InodeNumber, fh: UInt64) {
        state.withLock { s in
            s.listings[fh] = nil
            guard let node = s.nodes[ino] else { return }
            node.opens -= 1
            s.release(node)
        }
    }

    public func fsyncdir(_ ino: InodeNumber, fh: UInt64, dataOnly: Bool) throws {}

    // MARK: Filesystem, extended attributes, permissions

    public func statfs(_ ino: InodeNumber, _ st: UnsafeMutablePointer<statvfs>) throws {
        let (blocksUsed, files) = state.withLock { s in
            (s.nodes.values.reduce(0) { $0 + ($1.data.count + 4095) / 4096 }, s.nodes.count)
        }
        let capacity = 1 << 28  // 1 TiB of 4 KiB blocks: memory is not the limit a df should show
        memset(st, 0, MemoryLayout<statvfs>.size)
        st.pointee.f_bsize = 4096
        st.pointee.f_frsize = 4096
        st.pointee.f_blocks = fsblkcnt_t(max(capacity, blocksUsed))
        st.pointee.f_bfree = fsblkcnt_t(max(capacity - blocksUsed, 0))
        st.pointee.f_bavail = st.pointee.f_bfree
        st.pointee.f_files = fsfilcnt_t(1 << 32)
        st.pointee.f_ffree = fsfilcnt_t((1 << 32) - files)
        st.pointee.f_favail = st.pointee.f_ffree
        st.pointee.f_namemax = 255
    }

    public func setxattr(_ ino: InodeNumber, name: [UInt8], value: UnsafeRawBufferPointer, flags: Int32, caller: Caller)
        throws
    {
        // system.posix_acl_access and _default: without FUSE_CAP_POSIX_ACL the kernel hands
        // them over as plain xattrs and leaves the mode to the filesystem, and `cp -a` sets
        // modes through them. Refused, tools fall back to chmod.
        if name.starts(with: Array("system.".utf8)) { throw FSError(EOPNOTSUPP) }
        try state.withLock { s in
            let node = try s.node(ino)
            let exists = node.xattrs[name] != nil
            if flags & slice_xattr_create != 0 && exists { throw FSError(EEXIST) }
            if flags & slice_xattr_replace != 0 && !exists { throw FSError(ENODATA) }
            node.xattrs[name] = [UInt8](value)
            node.ctime = .now
        }
    }

    public func getxattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws -> [UInt8] {
        try state.withLock { s in
            guard let value = try s.node(ino).xattrs[name] else { throw FSError(ENODATA) }
            return value
        }
    }

    public func listxattr(_ ino: InodeNumber, caller: Caller) throws -> [UInt8] {
        try state.withLock { s in
            var list: [UInt8] = []
            for name in try s.node(ino).xattrs.keys.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
                list += name
                list.append(0)
            }
            return list
        }
    }

    public func removexattr(_ ino: InodeNumber, name: [UInt8], caller: Caller) throws {
        try state.withLock { s in
            let node = try s.node(ino)
            guard node.xattrs.removeValue(forKey: name) != nil else { throw FSError(ENODATA) }
            node.ctime = .now
        }
    }

    /// The mode bits, as the kernel checks them under `default_permissions` (supplementary
    /// groups aside). Root may do anything but execute a file without any x bit.
    public func access(_ ino: InodeNumber, mask: Int32, caller: Caller) throws {
        let (mode, uid, gid) = try state.withLock { s in
            let node = try s.node(ino)
            return (node.mode, node.uid, node.gid)
        }
        let wanted = mode_t(mask & (R_OK | W_OK | X_OK))
        if caller.isRoot {
            if wanted & mode_t(X_OK) != 0 && mode & S_IFMT != S_IFDIR && mode & 0o111 == 0 {
                throw FSError(EACCES)
            }
            return
        }
        let granted = caller.uid == uid ? (mode >> 6) & 7 : caller.gid == gid ? (mode >> 3) & 7 : mode & 7
        if wanted & ~granted != 0 { throw FSError(EACCES) }
    }
}

/// FUSE_ROOT_ID.
private let rootIno: InodeNumber = 1

private func checkName(_ name: [UInt8]) throws {
    guard !name.isEmpty, name != [0x2E], name != [0x2E, 0x2E], !name.contains(0x2F) else { throw FSError(EINVAL) }
    guard name.count <= 255 else { throw FSError(ENAMETOOLONG) }
}
