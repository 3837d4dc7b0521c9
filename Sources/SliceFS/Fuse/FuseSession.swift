import CFuse

#if canImport(Glibc)
    import Glibc
#endif

/// Mounts a `LowLevelOperations` filesystem through libfuse's low-level API and serves it.
///
/// Mount options (`-o`) the low-level session accepts (libfuse 3.14: `fuse_session_new` and
/// its mount-option parser; anything else fails the mount with "unknown option"):
///   allow_other, allow_root (both turn on default_permissions: the kernel checks modes),
///   default_permissions, auto_unmount (a fusermount3 helper unmounts when the process dies,
///   even SIGKILLed), ro, rw, fsname=, subtype=, max_read= (handed to `init` as libfuse 3.14
///   wants), suid/nosuid, dev/nodev (FUSE mounts are nosuid,nodev unless asked), exec/noexec,
///   atime/noatime, sync/async, dirsync, debug (every request logged on stderr), and the
///   SELinux context options. blksize= is for fuseblk only: the kernel refuses the mount.
/// The high-level API's own options are *not* accepted here: attr_timeout, entry_timeout,
/// negative_timeout, kernel_cache, auto_cache, hard_remove, use_ino, readdir_ino, umask=,
/// uid=, gid=, big_writes, max_write=. Their low-level equivalents are the filesystem's
/// business (timeouts in every reply, `keep_cache` per open, inode numbers its own) or the
/// bridge's (`max_write` in `init`).
public enum FuseSession {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Mounts `fs` at `mountpoint` with `options` (FUSE `-o` options, see above), calls
    /// `fs.mounted()` and then `ready` once the mount is live, and serves requests on a
    /// multithreaded loop until `fusermount3 -u`, `umount`, SIGTERM, SIGINT or SIGHUP. Then it
    /// unmounts, ends the session and calls `fs.unmounting()` before returning.
    public static func serve(
        _ fs: any LowLevelOperations, at mountpoint: String, options: [String], ready: () -> Void
    ) throws {
        var ops = makeLowLevelOperations()
        var arguments = ["slice"]
        if !options.isEmpty { arguments += ["-o", options.joined(separator: ",")] }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        defer { for a in argv { free(a) } }
        let maxRead = options.compactMap { $0.hasPrefix("max_read=") ? UInt32($0.dropFirst(9)) : nil }.last
        let context = Unmanaged.passRetained(BridgeContext(fs, maxRead: maxRead ?? 0))
        defer { context.release() }
        let session: OpaquePointer? = argv.withUnsafeMutableBufferPointer { buf in
            var args = fuse_args(argc: Int32(arguments.count), argv: buf.baseAddress, allocated: 0)
            defer { fuse_opt_free_args(&args) }
            return fuse_session_new(&args, &ops, MemoryLayout<fuse_lowlevel_ops>.size, context.toOpaque())
        }
        guard let session else {
            throw Failure(
                description:
                    "bad mount options: \(options.joined(separator: ",")) (libfuse's message above says which; "
                    + "the low-level session takes no attr_timeout, kernel_cache, hard_remove, use_ino, ...)")
        }
        guard fuse_session_mount(session, mountpoint) == 0 else {
            fuse_session_destroy(session)
            throw Failure(
                description:
                    "cannot mount at \(mountpoint) (is /dev/fuse available, and the mount point an empty directory?)")
        }
        guard fuse_set_signal_handlers(session) == 0 else {
            fuse_session_unmount(session)
            fuse_session_destroy(session)
            throw Failure(description: "cannot install signal handlers")
        }
        // A signal mask survives exec, and a parent may have started us with these blocked
        // (a Swift program's threads block them, and Foundation's Process passes that on):
        // then SIGTERM would stay pending and never stop the mount. libfuse's workers block
        // every signal themselves, so this thread is the one that receives them, and the
        // signal interrupts its wait for the loop's end.
        var handled = sigset_t()
        sigemptyset(&handled)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&handled, signal) }
        pthread_sigmask(SIG_UNBLOCK, &handled, nil)
        fs.notifier?.attach(session)
        fs.mounted()
        ready()
        let config = fuse_loop_cfg_create()
        fuse_loop_cfg_set_max_threads(config, 32)
        fuse_loop_cfg_set_idle_threads(config, 8)
        fuse_loop_cfg_set_clone_fd(config, 0)
        // 0 after an unmount; libfuse 3.14 returns the signal's number after SIGTERM/SIGINT/
        // SIGHUP (its handler stores it as the session's "error"); negative: a real failure.
        let result = fuse_session_loop_mt(session, config)
        fuse_loop_cfg_destroy(config)
        fs.notifier?.attach(nil)
        fuse_remove_signal_handlers(session)
        fuse_session_unmount(session)
        fuse_session_destroy(session)
        fs.unmounting()
        if result < 0 { throw Failure(description: "FUSE loop failed: \(String(cString: strerror(-result)))") }
    }
}
