import CFuse

#if canImport(Glibc)
    import Glibc
#endif

// The only code that speaks libfuse's low-level API (`fuse_lowlevel.h`): one C callback per
// request type, each decoding its request, making one call of `LowLevelOperations` on the
// FUSE worker thread that received it, and sending exactly one reply. No tasks, no locks, no
// Foundation: the kernel round trip (15-20 us of daemon CPU) is the cost to stay near.
//
//   kernel ──► libfuse worker ──► llLookup(req, parent, name)
//                                   │ operations(req, .lookup)  (the session's userdata: a
//                                   │                            BridgeContext; counts it)
//                                   ▼
//                                 fs.lookup(parent:name:caller:)  ──► EntryReply / throws
//                                   │
//                                   ▼
//                                 fuse_reply_entry  |  fuse_reply_err(FSError.errno(of:))
//
// C function pointers cannot capture, so every callback is a top-level function that finds
// the filesystem through `fuse_req_userdata(req)`.

/// What the session's userdata points to: the filesystem, behind a concrete class so that
/// `Unmanaged` can carry it (an existential cannot be made `Unmanaged` itself).
final class BridgeContext: Sendable {
    let fs: any LowLevelOperations
    /// The `max_read=` mount option, which libfuse 3.14 also wants in `init`'s
    /// `conn->max_read` (else it fails INIT with EPROTO); 0: none given.
    let maxRead: UInt32
    let counts: FuseRequestCounts?

    init(_ fs: any LowLevelOperations, maxRead: UInt32) {
        self.fs = fs
        self.maxRead = maxRead
        counts = fs.requestCounts
    }
}

@inline(__always)
/// The filesystem serving `req`, with the request counted as one of `kind`.
private func operations(_ req: fuse_req_t?, _ kind: FuseRequestCounts.Kind) -> any LowLevelOperations {
    let context = Unmanaged<BridgeContext>.fromOpaque(fuse_req_userdata(req)!).takeUnretainedValue()
    context.counts?.add(kind)
    return context.fs
}

@inline(__always)
private func caller(_ req: fuse_req_t?) -> Caller {
    let c = fuse_req_ctx(req)!.pointee
    return Caller(uid: c.uid, gid: c.gid, pid: c.pid, umask: c.umask)
}

/// A name from the kernel (NUL-terminated, at most 255 bytes after the kernel's checks).
@inline(__always)
private func bytes(_ name: UnsafePointer<CChar>?) -> [UInt8] {
    guard let name else { return [] }
    return [UInt8](UnsafeRawBufferPointer(start: name, count: strlen(name)))
}

@inline(__always)
private func offset(_ off: off_t) -> UInt64 { UInt64(clamping: off) }

@inline(__always)
private func replyError(_ req: fuse_req_t?, _ error: any Error) {
    fuse_reply_err(req, FSError.errno(of: error))
}

private func fill(_ param: UnsafeMutablePointer<fuse_entry_param>, _ e: EntryReply) {
    param.pointee.ino = fuse_ino_t(e.ino)
    param.pointee.generation = e.generation
    if let attributes = e.attributes {
        attributes.fill(&param.pointee.attr)
    } else {
        param.pointee.attr.st_ino = ino_t(e.ino)
    }
    param.pointee.attr_timeout = e.attrTimeout
    param.pointee.entry_timeout = e.entryTimeout
}

/// Answers with an entry. A reply the kernel refuses (the request was interrupted: -ENOENT)
/// never reached it, so its lookup is given back at once.
private func replyEntry(_ req: fuse_req_t?, _ fs: any LowLevelOperations, _ e: EntryReply) {
    var param = fuse_entry_param()
    fill(&param, e)
    if fuse_reply_entry(req, &param) == -ENOENT && e.ino != 0 { fs.forget(e.ino, lookups: 1) }
}

private func setOpenFlags(_ fi: UnsafeMutablePointer<fuse_file_info>, _ reply: OpenReply) {
    // C bit-fields: Swift imports them as settable properties of the struct.
    fi.pointee.fh = reply.fh
    fi.pointee.direct_io = reply.directIO ? 1 : 0
    fi.pointee.keep_cache = reply.keepCache ? 1 : 0
    fi.pointee.nonseekable = reply.nonSeekable ? 1 : 0
    fi.pointee.cache_readdir = reply.cacheDirectory ? 1 : 0
    fi.pointee.noflush = reply.noFlush ? 1 : 0
}

// MARK: - Session

private func llInit(_ userdata: UnsafeMutableRawPointer?, _ conn: UnsafeMutablePointer<fuse_conn_info>?) {
    guard let conn, let userdata else { return }
    conn.pointee.max_read = Unmanaged<BridgeContext>.fromOpaque(userdata).takeUnretainedValue().maxRead
    let offered = conn.pointee.capable
    // readdirplus (and the kernel's choice of it or readdir by access pattern), lookups of
    // "." and ".." for NFS export, and concurrent reads of one file.
    let wanted = UInt32(
        FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_ASYNC_READ)
    conn.pointee.want |= wanted & offered
    // libfuse 3.14 turns HANDLE_KILLPRIV on by default; without it the kernel clears the
    // set-ID bits itself, with a SETATTR of the mode. Writeback caching stays off (the
    // kernel's default): every write reaches the filesystem before write(2) returns.
    conn.pointee.want &= ~UInt32(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE)
    // 1 MiB: libfuse's largest request buffer (256 pages). The kernel caps readahead at its
    // own offer (the bdi's read_ahead_kb, 128 KiB by default).
    conn.pointee.max_write = 1 << 20
    conn.pointee.max_readahead = 1 << 20
}

/// The end of a session is `FuseSession.serve`'s to announce (`unmounting()`, after the kernel
/// has let go); libfuse calls this from `fuse_session_destroy` just before.
private func llDestroy(_ userdata: UnsafeMutableRawPointer?) {}

// MARK: - Names and inodes

private func llLookup(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    let fs = operations(req, .lookup)
    do {
        replyEntry(req, fs, try fs.lookup(parent: InodeNumber(parent), name: bytes(name), caller: caller(req)))
    } catch {
        replyError(req, error)
    }
}

private func llForget(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ nlookup: UInt64) {
    operations(req, .forget).forget(InodeNumber(ino), lookups: nlookup)
    fuse_reply_none(req)
}

private func llForgetMulti(_ req: fuse_req_t?, _ count: Int, _ forgets: UnsafeMutablePointer<fuse_forget_data>?) {
    let fs = operations(req, .batchForget)
    if let forgets {
        for f in UnsafeBufferPointer(start: forgets, count: count) { fs.forget(InodeNumber(f.ino), lookups: f.nlookup) }
    }
    fuse_reply_none(req)
}

private func llGetattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    do {
        let (attributes, timeout) = try operations(req, .getattr).getattr(
            InodeNumber(ino), fh: fi?.pointee.fh, caller: caller(req))
        var st = stat()
        attributes.fill(&st)
        fuse_reply_attr(req, &st, timeout)
    } catch {
        replyError(req, error)
    }
}

private func llSetattr(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ attr: UnsafeMutablePointer<stat>?, _ toSet: Int32,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    let st = attr!.pointee
    var changes = AttributeChanges()
    // The kernel sends the whole st_mode; the type bits cannot change, so only the
    // permission bits (with set-ID and sticky) go on.
    if toSet & FUSE_SET_ATTR_MODE != 0 { changes.mode = st.st_mode & 0o7777 }
    if toSet & FUSE_SET_ATTR_UID != 0 { changes.uid = st.st_uid }
    if toSet & FUSE_SET_ATTR_GID != 0 { changes.gid = st.st_gid }
    if toSet & FUSE_SET_ATTR_SIZE != 0 { changes.size = UInt64(clamping: st.st_size) }
    if toSet & FUSE_SET_ATTR_ATIME_NOW != 0 {
        changes.atime = .now
    } else if toSet & FUSE_SET_ATTR_ATIME != 0 {
        changes.atime = .set(Timestamp(st.st_atim))
    }
    if toSet & FUSE_SET_ATTR_MTIME_NOW != 0 {
        changes.mtime = .now
    } else if toSet & FUSE_SET_ATTR_MTIME != 0 {
        changes.mtime = .set(Timestamp(st.st_mtim))
    }
    // The kernel's FATTR_KILL_SUIDGID arrives as libfuse's KILL_SUID bit (same value).
    if toSet & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID) != 0 { changes.killSetID = true }
    do {
        let (attributes, timeout) = try operations(req, .setattr).setattr(
            InodeNumber(ino), changes, fh: fi?.pointee.fh, caller: caller(req))
        var out = stat()
        attributes.fill(&out)
        fuse_reply_attr(req, &out, timeout)
    } catch {
        replyError(req, error)
    }
}

private func llReadlink(_ req: fuse_req_t?, _ ino: fuse_ino_t) {
    do {
        var target = try operations(req, .readlink).readlink(InodeNumber(ino), caller: caller(req))
        target.append(0)
        _ = target.withUnsafeBytes { fuse_reply_readlink(req, $0.baseAddress!.assumingMemoryBound(to: CChar.self)) }
    } catch {
        replyError(req, error)
    }
}

private func llMknod(
    _ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t, _ rdev: dev_t
) {
    let fs = operations(req, .mknod)
    do {
        let e = try fs.mknod(
            parent: InodeNumber(parent), name: bytes(name), mode: mode, rdev: UInt64(rdev), caller: caller(req))
        replyEntry(req, fs, e)
    } catch {
        replyError(req, error)
    }
}

private func llMkdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t) {
    let fs = operations(req, .mkdir)
    do {
        replyEntry(
            req, fs, try fs.mkdir(parent: InodeNumber(parent), name: bytes(name), mode: mode, caller: caller(req)))
    } catch {
        replyError(req, error)
    }
}

private func llUnlink(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    do {
        try operations(req, .unlink).unlink(parent: InodeNumber(parent), name: bytes(name), caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llRmdir(_ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    do {
        try operations(req, .rmdir).rmdir(parent: InodeNumber(parent), name: bytes(name), caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llSymlink(
    _ req: fuse_req_t?, _ target: UnsafePointer<CChar>?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?
) {
    let fs = operations(req, .symlink)
    do {
        let e = try fs.symlink(
            target: bytes(target), parent: InodeNumber(parent), name: bytes(name), caller: caller(req))
        replyEntry(req, fs, e)
    } catch {
        replyError(req, error)
    }
}

private func llRename(
    _ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ newParent: fuse_ino_t,
    _ newName: UnsafePointer<CChar>?, _ flags: UInt32
) {
    do {
        try operations(req, .rename).rename(
            parent: InodeNumber(parent), name: bytes(name), newParent: InodeNumber(newParent), newName: bytes(newName),
            flags: flags, caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llLink(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ newParent: fuse_ino_t, _ newName: UnsafePointer<CChar>?) {
    let fs = operations(req, .link)
    do {
        let e = try fs.link(
            InodeNumber(ino), newParent: InodeNumber(newParent), newName: bytes(newName), caller: caller(req))
        replyEntry(req, fs, e)
    } catch {
        replyError(req, error)
    }
}

// MARK: - Files

private func llOpen(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    let fs = operations(req, .open)
    do {
        let reply = try fs.open(InodeNumber(ino), flags: fi!.pointee.flags, caller: caller(req))
        setOpenFlags(fi!, reply)
        // -ENOENT: the open was interrupted and the kernel will send no RELEASE for it.
        if fuse_reply_open(req, fi) == -ENOENT { fs.release(InodeNumber(ino), fh: reply.fh) }
    } catch {
        replyError(req, error)
    }
}

private func llCreate(
    _ req: fuse_req_t?, _ parent: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ mode: mode_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    let fs = operations(req, .create)
    do {
        let (e, reply) = try fs.create(
            parent: InodeNumber(parent), name: bytes(name), mode: mode, flags: fi!.pointee.flags, caller: caller(req))
        setOpenFlags(fi!, reply)
        var param = fuse_entry_param()
        fill(&param, e)
        if fuse_reply_create(req, &param, fi) == -ENOENT {
            fs.release(e.ino, fh: reply.fh)
            fs.forget(e.ino, lookups: 1)
        }
    } catch {
        replyError(req, error)
    }
}

private func llRead(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
    defer { buffer.deallocate() }
    do {
        let n = try operations(req, .read).read(InodeNumber(ino), fh: fi!.pointee.fh, offset: offset(off), into: buffer)
        fuse_reply_buf(req, buffer.baseAddress?.assumingMemoryBound(to: CChar.self), min(max(n, 0), size))
    } catch {
        replyError(req, error)
    }
}

private func llWrite(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ buf: UnsafePointer<CChar>?, _ size: Int, _ off: off_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    do {
        let n = try operations(req, .write).write(
            InodeNumber(ino), fh: fi!.pointee.fh, offset: offset(off),
            data: UnsafeRawBufferPointer(start: buf, count: size), caller: caller(req))
        fuse_reply_write(req, n)
    } catch {
        replyError(req, error)
    }
}

private func llFlush(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    do {
        try operations(req, .flush).flush(InodeNumber(ino), fh: fi!.pointee.fh, caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llRelease(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    operations(req, .release).release(InodeNumber(ino), fh: fi!.pointee.fh)
    fuse_reply_err(req, 0)
}

private func llFsync(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    do {
        try operations(req, .fsync).fsync(InodeNumber(ino), fh: fi!.pointee.fh, dataOnly: datasync != 0)
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llFallocate(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ mode: Int32, _ off: off_t, _ length: off_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    do {
        try operations(req, .fallocate).fallocate(
            InodeNumber(ino), fh: fi!.pointee.fh, mode: mode, offset: offset(off), length: offset(length))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llLseek(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ off: off_t, _ whence: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    do {
        let at = try operations(req, .lseek).lseek(
            InodeNumber(ino), fh: fi!.pointee.fh, offset: offset(off), whence: whence)
        fuse_reply_lseek(req, off_t(clamping: at))
    } catch {
        replyError(req, error)
    }
}

// MARK: - Directories

private func llOpendir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    let fs = operations(req, .opendir)
    do {
        let reply = try fs.opendir(InodeNumber(ino), caller: caller(req))
        setOpenFlags(fi!, reply)
        if fuse_reply_open(req, fi) == -ENOENT { fs.releasedir(InodeNumber(ino), fh: reply.fh) }
    } catch {
        replyError(req, error)
    }
}

private func llReaddir(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    replyDirectory(req, ino, size, off, fi, plus: false)
}

private func llReaddirplus(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    replyDirectory(req, ino, size, off, fi, plus: true)
}

/// Packs entries into one reply of at most `size` bytes. An entry that does not fit is
/// refused (`fill` returns false) and not added; the kernel asks again from its offset.
private func replyDirectory(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int, _ off: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?,
    plus: Bool
) {
    let fs = operations(req, plus ? .readdirplus : .readdir)
    let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
    defer { buffer.deallocate() }
    let base = buffer.assumingMemoryBound(to: CChar.self)
    var used = 0
    var name: [UInt8] = []  // the entry's name with a NUL, reused
    name.reserveCapacity(256)
    var counted: [InodeNumber] = []  // readdirplus entries sent: each one is a lookup
    var failure: (any Error)?
    do {
        try fs.readdir(InodeNumber(ino), fh: fi!.pointee.fh, offset: Int64(off), plus: plus) { entry in
            name.removeAll(keepingCapacity: true)
            name.append(contentsOf: entry.name)
            name.append(0)
            let needed = name.withUnsafeBytes { cname -> Int in
                let cname = cname.baseAddress!.assumingMemoryBound(to: CChar.self)
                if plus {
                    var param = fuse_entry_param()
                    if let e = entry.entry {
                        fill(&param, e)
                    } else {
                        // "." and "..": ino 0 tells the kernel to instantiate nothing.
                        param.attr.st_ino = ino_t(entry.ino)
                        param.attr.st_mode = entry.type
                    }
                    return fuse_add_direntry_plus(req, base + used, size - used, cname, &param, off_t(entry.nextOffset))
                }
                var st = stat()
                st.st_ino = ino_t(entry.ino)
                st.st_mode = entry.type
                return fuse_add_direntry(req, base + used, size - used, cname, &st, off_t(entry.nextOffset))
            }
            guard needed <= size - used else { return false }
            used += needed
            if plus, let e = entry.entry, e.ino != 0 { counted.append(e.ino) }
            return true
        }
    } catch {
        failure = error
    }
    // Entries already packed go out even after an error (the next request reports it).
    if let failure, used == 0 {
        replyError(req, failure)
        return
    }
    if fuse_reply_buf(req, base, used) == -ENOENT {
        for ino in counted { fs.forget(ino, lookups: 1) }
    }
}

private func llReleasedir(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ fi: UnsafeMutablePointer<fuse_file_info>?) {
    operations(req, .releasedir).releasedir(InodeNumber(ino), fh: fi!.pointee.fh)
    fuse_reply_err(req, 0)
}

private func llFsyncdir(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?
) {
    do {
        try operations(req, .fsyncdir).fsyncdir(InodeNumber(ino), fh: fi!.pointee.fh, dataOnly: datasync != 0)
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

// MARK: - Filesystem, extended attributes, permissions

private func llStatfs(_ req: fuse_req_t?, _ ino: fuse_ino_t) {
    do {
        var st = statvfs()
        try operations(req, .statfs).statfs(InodeNumber(ino), &st)
        fuse_reply_statfs(req, &st)
    } catch {
        replyError(req, error)
    }
}

private func llSetxattr(
    _ req: fuse_req_t?, _ ino: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?, _ size: Int,
    _ flags: Int32
) {
    do {
        try operations(req, .setxattr).setxattr(
            InodeNumber(ino), name: bytes(name), value: UnsafeRawBufferPointer(start: value, count: size), flags: flags,
            caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

/// An xattr value or name list: its size when asked with size 0, ERANGE when it does not fit.
private func replyXattr(_ req: fuse_req_t?, _ value: [UInt8], _ size: Int) {
    if size == 0 {
        fuse_reply_xattr(req, value.count)
    } else if value.count > size {
        fuse_reply_err(req, ERANGE)
    } else {
        _ = value.withUnsafeBytes { fuse_reply_buf(req, $0.baseAddress?.assumingMemoryBound(to: CChar.self), $0.count) }
    }
}

private func llGetxattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ name: UnsafePointer<CChar>?, _ size: Int) {
    do {
        replyXattr(
            req, try operations(req, .getxattr).getxattr(InodeNumber(ino), name: bytes(name), caller: caller(req)), size
        )
    } catch {
        replyError(req, error)
    }
}

private func llListxattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ size: Int) {
    do {
        replyXattr(req, try operations(req, .listxattr).listxattr(InodeNumber(ino), caller: caller(req)), size)
    } catch {
        replyError(req, error)
    }
}

private func llRemovexattr(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ name: UnsafePointer<CChar>?) {
    do {
        try operations(req, .removexattr).removexattr(InodeNumber(ino), name: bytes(name), caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

private func llAccess(_ req: fuse_req_t?, _ ino: fuse_ino_t, _ mask: Int32) {
    do {
        try operations(req, .access).access(InodeNumber(ino), mask: mask, caller: caller(req))
        fuse_reply_err(req, 0)
    } catch {
        replyError(req, error)
    }
}

/// The operation table handed to `fuse_session_new`. Requests without an entry here (locks,
/// ioctl, poll, bmap, copy_file_range) are answered ENOSYS by libfuse, and the kernel then
/// does them itself (locks: local to this machine; copy_file_range: read + write).
func makeLowLevelOperations() -> fuse_lowlevel_ops {
    var ops = fuse_lowlevel_ops()
    ops.`init` = llInit
    ops.destroy = llDestroy
    ops.lookup = llLookup
    ops.forget = llForget
    ops.forget_multi = llForgetMulti
    ops.getattr = llGetattr
    ops.setattr = llSetattr
    ops.readlink = llReadlink
    ops.mknod = llMknod
    ops.mkdir = llMkdir
    ops.unlink = llUnlink
    ops.rmdir = llRmdir
    ops.symlink = llSymlink
    ops.rename = llRename
    ops.link = llLink
    ops.open = llOpen
    ops.create = llCreate
    ops.read = llRead
    ops.write = llWrite
    ops.flush = llFlush
    ops.release = llRelease
    ops.fsync = llFsync
    ops.fallocate = llFallocate
    ops.lseek = llLseek
    ops.opendir = llOpendir
    ops.readdir = llReaddir
    ops.readdirplus = llReaddirplus
    ops.releasedir = llReleasedir
    ops.fsyncdir = llFsyncdir
    ops.statfs = llStatfs
    ops.setxattr = llSetxattr
    ops.getxattr = llGetxattr
    ops.listxattr = llListxattr
    ops.removexattr = llRemovexattr
    ops.access = llAccess
    return ops
}
