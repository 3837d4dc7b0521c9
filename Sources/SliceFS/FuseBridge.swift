import CFuse
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

// The libfuse high-level callbacks. C function pointers cannot capture, so each is a top-level
// function that finds the filesystem through the FUSE context's private data and forwards.

@inline(__always)
private func fs() -> SliceFileSystem {
    Unmanaged<SliceFileSystem>.fromOpaque(fuse_get_context()!.pointee.private_data!).takeUnretainedValue()
}

@inline(__always)
private func caller() -> (uid: uid_t, gid: gid_t) {
    let c = fuse_get_context()!.pointee
    return (c.uid, c.gid)
}

private func fsInit(_ conn: UnsafeMutablePointer<fuse_conn_info>?, _ cfg: UnsafeMutablePointer<fuse_config>?)
    -> UnsafeMutableRawPointer?
{
    if let cfg {
        // Unlinking an open file removes the key at once (no .fuse_hidden files in the store).
        cfg.pointee.hard_remove = 1
        // The mount process is the only writer of its store (the LOCK file makes sure), so the
        // kernel may cache attributes, names and file pages: a cached stat costs 2 us instead of
        // a 30-40 us round trip.
        cfg.pointee.attr_timeout = 1.0
        cfg.pointee.entry_timeout = 1.0
        cfg.pointee.negative_timeout = 0
        cfg.pointee.kernel_cache = 1
        cfg.pointee.use_ino = 0
    }
    if let conn {
        // Plain READDIR, not READDIRPLUS: libfuse 3.14's high-level readdirplus keeps the
        // entries in a list that it walks from the start for every kernel request (quadratic:
        // a 100,000-entry listing spent most of its time there), and our entries carry no
        // attributes for it to hand on anyway.
        conn.pointee.want &= ~(slice_cap_readdirplus | slice_cap_readdirplus_auto)
    }
    // The return value replaces private_data: hand back the filesystem.
    return fuse_get_context()!.pointee.private_data
}

private func fsDestroy(_ data: UnsafeMutableRawPointer?) {
    guard let data else { return }
    Unmanaged<SliceFileSystem>.fromOpaque(data).takeUnretainedValue().flushAll()
}

private func fsGetattr(
    _ path: UnsafePointer<CChar>?, _ st: UnsafeMutablePointer<stat>?, _ fi: UnsafeMutablePointer<fuse_file_info>?
) -> Int32 {
    fs().getattr(path, st!, fh: fi?.pointee.fh)
}

private func fsAccess(_ path: UnsafePointer<CChar>?, _ mask: Int32) -> Int32 {
    let c = caller()
    return fs().access(path!, mask, uid: c.uid, gid: c.gid)
}

private func fsReadlink(_ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int32 {
    fs().readlink(path!, buf!, size)
}

private func fsMknod(_ path: UnsafePointer<CChar>?, _ mode: mode_t, _ dev: dev_t) -> Int32 {
    if mode & S_IFMT == S_IFREG {
        var fh: UInt64 = 0
        var uncached = false
        let c = caller()
        let r = fs().create(path!, mode & 0o7777, uid: c.uid, gid: c.gid, fh: &fh, uncached: &uncached)
        if r == 0 { _ = fs().release(fh) }
        return r
    }
    return -EPERM  // device nodes, FIFOs and sockets cannot be stored
}

private func fsMkdir(_ path: UnsafePointer<CChar>?, _ mode: mode_t) -> Int32 {
    let c = caller()
    return fs().mkdir(path!, mode & 0o7777, uid: c.uid, gid: c.gid)
}

private func fsUnlink(_ path: UnsafePointer<CChar>?) -> Int32 { fs().unlink(path!) }
private func fsRmdir(_ path: UnsafePointer<CChar>?) -> Int32 { fs().rmdir(path!) }

private func fsSymlink(_ target: UnsafePointer<CChar>?, _ path: UnsafePointer<CChar>?) -> Int32 {
    let c = caller()
    return fs().symlink(target!, path!, uid: c.uid, gid: c.gid)
}

private func fsRename(_ from: UnsafePointer<CChar>?, _ to: UnsafePointer<CChar>?, _ flags: UInt32) -> Int32 {
    fs().rename(from!, to!, flags: flags)
}

private func fsLink(_ from: UnsafePointer<CChar>?, _ to: UnsafePointer<CChar>?) -> Int32 { fs().link(from!, to!) }

private func fsChmod(_ path: UnsafePointer<CChar>?, _ mode: mode_t, _ fi: UnsafeMutablePointer<fuse_file_info>?)
    -> Int32
{
    guard let path else { return -ENOENT }  // no path: the file was unlinked while open
    return fs().chmod(path, mode)
}

private func fsChown(
    _ path: UnsafePointer<CChar>?, _ uid: uid_t, _ gid: gid_t, _ fi: UnsafeMutablePointer<fuse_file_info>?
) -> Int32 {
    guard let path else { return -ENOENT }
    return fs().chown(path, uid, gid)
}

private func fsTruncate(_ path: UnsafePointer<CChar>?, _ size: off_t, _ fi: UnsafeMutablePointer<fuse_file_info>?)
    -> Int32
{
    fs().truncate(path, size, fh: fi?.pointee.fh)
}

private func fsOpen(_ path: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    var fh: UInt64 = 0
    var direct = false
    let r = fs().open(path!, flags: fi!.pointee.flags, uid: caller().uid, fh: &fh, directIO: &direct)
    if r == 0 {
        fi!.pointee.fh = fh
        if direct { fi!.pointee.direct_io = 1 } else { fi!.pointee.keep_cache = 1 }
        // A read-only handle has nothing to commit, so its FLUSH would be a round trip that
        // does nothing (one in four of a small file's open+read+close). O_TRUNC stages a
        // change even on a read-only open: that one is flushed as usual.
        if fi!.pointee.flags & (O_ACCMODE | O_TRUNC) == O_RDONLY { fi!.pointee.noflush = 1 }
    }
    return r
}

private func fsCreate(_ path: UnsafePointer<CChar>?, _ mode: mode_t, _ fi: UnsafeMutablePointer<fuse_file_info>?)
    -> Int32
{
    var fh: UInt64 = 0
    var uncached = false
    let c = caller()
    let r = fs().create(
        path!, mode & 0o7777, uid: c.uid, gid: c.gid, writeOnly: fi!.pointee.flags & O_ACCMODE == O_WRONLY, fh: &fh,
        uncached: &uncached)
    if r == 0 {
        fi!.pointee.fh = fh
        if uncached {
            // See SliceFileSystem.create: no page cache, and no FLUSH on close.
            fi!.pointee.direct_io = 1
            fi!.pointee.noflush = 1
        }
    }
    return r
}

private func fsRead(
    _ path: UnsafePointer<CChar>?, _ buf: UnsafeMutablePointer<CChar>?, _ size: Int, _ offset: off_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) -> Int32 {
    fs().read(fi!.pointee.fh, buf!, size, offset)
}

private func fsWrite(
    _ path: UnsafePointer<CChar>?, _ buf: UnsafePointer<CChar>?, _ size: Int, _ offset: off_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?
) -> Int32 {
    var attributesChanged = false
    let r = fs().write(fi!.pointee.fh, buf!, size, offset, uid: caller().uid, attributesChanged: &attributesChanged)
    if attributesChanged, let path {
        // The kernel caches the mode it last saw; a write around the page cache changed it here.
        _ = fuse_invalidate_path(fuse_get_context()!.pointee.fuse, path)
    }
    return r
}

private func fsStatfs(_ path: UnsafePointer<CChar>?, _ st: UnsafeMutablePointer<statvfs>?) -> Int32 { fs().statfs(st!) }

private func fsFlush(_ path: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    fs().flush(fi!.pointee.fh)
}

private func fsRelease(_ path: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    fs().release(fi!.pointee.fh)
}

private func fsFsync(_ path: UnsafePointer<CChar>?, _ datasync: Int32, _ fi: UnsafeMutablePointer<fuse_file_info>?)
    -> Int32
{
    fs().fsync(fi!.pointee.fh)
}

private func fsSetxattr(
    _ path: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?, _ value: UnsafePointer<CChar>?, _ size: Int,
    _ flags: Int32
) -> Int32 {
    fs().setxattr(path!, name!, value, size, flags)
}

private func fsGetxattr(
    _ path: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?, _ value: UnsafeMutablePointer<CChar>?, _ size: Int
) -> Int32 {
    fs().getxattr(path!, name!, value, size)
}

private func fsListxattr(_ path: UnsafePointer<CChar>?, _ list: UnsafeMutablePointer<CChar>?, _ size: Int) -> Int32 {
    fs().listxattr(path!, list, size)
}

private func fsRemovexattr(_ path: UnsafePointer<CChar>?, _ name: UnsafePointer<CChar>?) -> Int32 {
    fs().removexattr(path!, name!)
}

private func fsOpendir(_ path: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    fi!.pointee.fh = fs().openDirectory()
    return 0
}

private func fsReleasedir(_ path: UnsafePointer<CChar>?, _ fi: UnsafeMutablePointer<fuse_file_info>?) -> Int32 {
    fs().releaseDirectory(fi!.pointee.fh)
    return 0
}

/// Entries go out with their offsets, so libfuse copies each kernel request's share straight
/// into the reply. (With offset 0 it keeps the whole listing in a linked list that 3.14 walks
/// from the start for every request: quadratic in the directory's size.)
private func fsReaddir(
    _ path: UnsafePointer<CChar>?, _ buf: UnsafeMutableRawPointer?, _ filler: fuse_fill_dir_t?, _ offset: off_t,
    _ fi: UnsafeMutablePointer<fuse_file_info>?, _ flags: fuse_readdir_flags
) -> Int32 {
    var st = stat()
    return fs().readdir(path, fh: fi!.pointee.fh, offset: Int(offset)) { name, mode, next in
        st.st_mode = mode
        return filler!(buf, name, &st, off_t(next), fuse_fill_dir_flags(0)) == 0
    }
}

private func fsUtimens(
    _ path: UnsafePointer<CChar>?, _ tv: UnsafePointer<timespec>?, _ fi: UnsafeMutablePointer<fuse_file_info>?
) -> Int32 {
    guard let path else { return -ENOENT }
    return fs().utimens(path, tv)
}

/// The operation table handed to libfuse.
func makeOperations() -> fuse_operations {
    var ops = fuse_operations()
    ops.`init` = fsInit
    ops.destroy = fsDestroy
    ops.getattr = fsGetattr
    ops.access = fsAccess
    ops.readlink = fsReadlink
    ops.mknod = fsMknod
    ops.mkdir = fsMkdir
    ops.unlink = fsUnlink
    ops.rmdir = fsRmdir
    ops.symlink = fsSymlink
    ops.rename = fsRename
    ops.link = fsLink
    ops.chmod = fsChmod
    ops.chown = fsChown
    ops.truncate = fsTruncate
    ops.open = fsOpen
    ops.create = fsCreate
    ops.read = fsRead
    ops.write = fsWrite
    ops.statfs = fsStatfs
    ops.flush = fsFlush
    ops.release = fsRelease
    ops.fsync = fsFsync
    ops.setxattr = fsSetxattr
    ops.getxattr = fsGetxattr
    ops.listxattr = fsListxattr
    ops.removexattr = fsRemovexattr
    ops.opendir = fsOpendir
    ops.releasedir = fsReleasedir
    ops.readdir = fsReaddir
    ops.utimens = fsUtimens
    return ops
}

/// Mounts a filesystem and serves it until unmounted or signalled.
public enum FuseMount {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Mounts `fs` at `mountpoint` with `options` (FUSE `-o` options), calls `ready` once the
    /// mount is live, and serves requests on a multithreaded loop until `fusermount3 -u`,
    /// `umount`, SIGTERM, SIGINT or SIGHUP. Open files are written back before it returns.
    public static func serve(_ fs: SliceFileSystem, at mountpoint: String, options: [String], ready: () -> Void) throws
    {
        var ops = makeOperations()
        var arguments = ["slice"]
        if !options.isEmpty { arguments += ["-o", options.joined(separator: ",")] }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        defer { for a in argv { free(a) } }
        let retained = Unmanaged.passRetained(fs)
        defer { retained.release() }
        let f: OpaquePointer? = argv.withUnsafeMutableBufferPointer { buf in
            var args = fuse_args(argc: Int32(arguments.count), argv: buf.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            return fuse_new(&args, &ops, MemoryLayout<fuse_operations>.size, retained.toOpaque())
        }
        guard let f else {
            throw Failure(description: "fuse_new failed (bad mount options: \(options.joined(separator: ",")))")
        }
        defer { fuse_destroy(f) }
        guard fuse_mount(f, mountpoint) == 0 else {
            throw Failure(
                description:
                    "cannot mount at \(mountpoint) (is /dev/fuse available, and the mount point an empty directory?)")
        }
        let session = fuse_get_session(f)
        guard fuse_set_signal_handlers(session) == 0 else {
            fuse_unmount(f)
            throw Failure(description: "cannot install signal handlers")
        }
        // A signal mask survives exec, and a parent may have started us with these blocked
        // (a Swift program's threads block them, and Foundation's Process passes that on):
        // then SIGTERM would stay pending and never stop the mount. libfuse's workers block
        // every signal themselves, so this thread is the one that receives them.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, signal) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        ready()
        let config = fuse_loop_cfg_create()
        fuse_loop_cfg_set_max_threads(config, 32)
        fuse_loop_cfg_set_idle_threads(config, 8)
        fuse_loop_cfg_set_clone_fd(config, 0)
        let result = fuse_loop_mt(f, config)
        fuse_loop_cfg_destroy(config)
        fuse_remove_signal_handlers(session)
        fuse_unmount(f)
        fs.flushAll()
        if result < 0 { throw Failure(description: "FUSE loop failed: \(String(cString: strerror(-result)))") }
    }
}
