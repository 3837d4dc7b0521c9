import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What can be done to the FUSE mounts stacked at a mount point: tell a live one from one whose
/// daemon died, take the top one off, and clear them all.
enum MountLayers {
    /// Whether the mount on top at `mountpoint` has a daemon answering. `statfs` (statvfs) is always sent
    /// to the daemon (the kernel caches no answer), so a dead one gives ENOTCONN at once, where
    /// `stat` may still succeed from the attribute cache.
    static func topIsLive(_ mountpoint: String) throws -> Bool {
        var st = statvfs()
        if statvfs(mountpoint, &st) == 0 { return true }
        let e = errno
        if e == ENOTCONN || e == ECONNABORTED { return false }
        throw CLIError("\(mountpoint): \(String(cString: strerror(e)))")
    }

    /// Takes the top mount off at once, even if something still holds it (lazy unmount): the
    /// way to drop a mount whose daemon is gone.
    static func detachTop(_ mountpoint: String) throws {
        if geteuid() == 0 && umount2(mountpoint, Int32(MNT_DETACH)) == 0 { return }
        if runTool(fusermount3, ["-u", "-z", mountpoint]) != 0 {
            throw CLIError("cannot unmount the stale mount at \(mountpoint)")
        }
    }

    /// Before mounting: takes off every FUSE mount at `mountpoint` whose daemon died (several
    /// may be stacked), and refuses when a live one is there. A killed daemon may still be
    /// exiting, so this also waits a little for its store's lock to be let go.
    static func clearDead(at mountpoint: String) throws {
        let mnt = canonicalMountPoint(mountpoint)
        var cleared: Set<String> = []
        for _ in 0..<maxLayers {
            guard let top = MountTable().fuseLayers(at: mnt).last else { break }
            if try topIsLive(mnt) {
                throw CLIError("\(mnt) is already mounted (\(top.source)); unmount it first")
            }
            Terminal.error("\(mnt): stale mount of \(top.source) (its daemon is gone); unmounting it")
            try detachTop(mnt)
            if let dir = top.sliceDirectory { cleared.insert(dir) }
        }
        guard MountTable().fuseLayers(at: mnt).isEmpty else {
            throw CLIError("cannot clear the stale mounts at \(mnt)")
        }
        for dir in cleared { _ = waitUntilClosed(dir, timeout: 2) }
    }

    /// Unmounts every FUSE mount stacked at `mountpoint`, top first: live ones normally
    /// (their daemons write back and close), dead ones lazily. Returns the data directories of
    /// the live Slice mounts, whose daemons may still be closing their stores.
    static func unmountAll(at mountpoint: String) throws -> [String] {
        let mnt = canonicalMountPoint(mountpoint)
        var closing: [String] = []
        for _ in 0..<maxLayers {
            guard let top = MountTable().fuseLayers(at: mnt).last else { return closing }
            if try topIsLive(mnt) {
                guard runTool(fusermount3, ["-u", mnt]) == 0 else {
                    throw CLIError("fusermount3 -u \(mnt) failed (is the mount busy?)")
                }
                if let dir = top.sliceDirectory { closing.append(dir) }
            } else {
                try detachTop(mnt)
            }
        }
        throw CLIError("\(mnt): more than \(maxLayers) mounts stacked; gave up")
    }

    /// Waits until no process holds the store's LOCK (its daemon has closed it). True when free.
    static func waitUntilClosed(_ dir: String, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let fd = open("\(dir)/LOCK", O_RDWR | O_CLOEXEC)
            if fd < 0 { return true }
            let locked = flock(fd, LOCK_EX | LOCK_NB) != 0
            if !locked { flock(fd, LOCK_UN) }
            close(fd)
            if !locked { return true }
            if Date() >= deadline { return false }
            usleep(20_000)
        }
    }

    /// A bound on the loops above, should the table keep changing under us.
    private static let maxLayers = 64

    static var fusermount3: String {
        FileManager.default.isExecutableFile(atPath: "/usr/bin/fusermount3")
            ? "/usr/bin/fusermount3" : "/bin/fusermount3"
    }
}
