import ArgumentParser
import Foundation
import SliceFS
import SliceKV

#if canImport(Glibc)
    import Glibc
#endif

struct Mount: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mount a store as a directory (FUSE).",
        discussion: """
            By default the command returns once the mount is ready and the store keeps being \
            served in the background (log: DATA_DIR/mount.log); --foreground serves in this \
            process until unmounted or sent SIGTERM/SIGINT. Options (-o, comma-separated): \
            Slice's own sync=none|always, wal_recovery=MODE (see slice check --help), ro (the store is opened read-only too), cache_mb=N, memtable_mb=N, max_file_mb=N (largest file; default: no limit), blob_kb=N (files of N KiB and more are kept in blob files; default 4), compaction=leveled|universal (default leveled; may change at any mount), snapdir=hidden|visible (whether .snapshots is listed at the root; always reachable by name; default hidden, so cp -a and rsync of the mount do not copy every snapshot), compression=none|lz4|zstd (tables written from now on, every level; default: none on L0-L1, LZ4 below, zstd at the deepest level), writeback (a file closed again within a second of its last commit is committed a second later: bursts of appends cost one commit, and a killed daemon may lose that second of closes); anything else goes to FUSE \
            (allow_other, ro, auto_unmount, ...). mount(8)-only options (defaults, noauto, \
            nofail, _netdev, x-...) are ignored. Mounts left at the mount point by killed \
            daemons (found in the mount table, however many are stacked) are unmounted first; \
            a live mount there is an error.
            """)

    @Argument(
        help: """
            The store's data directory (created if missing), or a tree in an etcd cluster shared \
            with other mounts: etcd://HOST:PORT[,HOST:PORT...]/PREFIX (README: "Shared mounts on etcd").
            """)
    var directory: String
    @Argument(help: "An existing empty directory to mount on.") var mountpoint: String
    @Option(name: .short, help: "Mount options, comma-separated.") var o: [String] = []
    @Flag(help: "Serve in this process instead of returning once mounted.") var foreground = false
    @Option(name: .customLong("ready-fd"), help: .hidden) var readyFD: Int32?

    func run() throws {
        try runReporting {
            let etcd = EtcdTarget.isEtcdURL(directory) ? try EtcdTarget(parsing: directory) : nil
            let dir = etcd == nil ? absolute(directory) : directory
            let mnt = absolute(mountpoint)
            // libfuse splits options at commas (the members of an etcd URL): "\," keeps one.
            var fuseOptions = ["fsname=slice:\(dir.replacingOccurrences(of: ",", with: "\\,"))", "subtype=slice"]
            /// Options of the embedded store, which an etcd mount has not.
            var storeOptions: [String] = []
            var options = Options()
            var writeBack = false
            var listSnapshots = false
            options.blobThreshold = SliceFileSystem.defaultBlobThreshold
            options.blobFileSize = SliceFileSystem.defaultBlobFileSize
            options.spaceReserve = SliceFileSystem.defaultBlobFileSize
            for opt in o.flatMap({ $0.split(separator: ",").map(String.init) }) {
                let parts = opt.split(separator: "=", maxSplits: 1).map(String.init)
                switch parts[0] {
                case "sync":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let p = Options.SyncPolicy(rawValue: parts[1]) else {
                        throw CLIError("-o sync takes none or always")
                    }
                    options.syncPolicy = p
                case "cache_mb":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let n = Int(parts[1]), n >= 0 else {
                        throw CLIError("-o cache_mb takes a number")
                    }
                    options.blockCacheBytes = n << 20
                case "max_file_mb":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let n = Int(parts[1]), n >= 1 else {
                        throw CLIError("-o max_file_mb takes a number")
                    }
                    options.maxValueSize = n << 20
                case "memtable_mb":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let n = Int(parts[1]), n >= 1 else {
                        throw CLIError("-o memtable_mb takes a number")
                    }
                    options.memtableSize = n << 20
                case "wal_recovery":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let m = WALRecovery(rawValue: parts[1]) else {
                        throw CLIError(
                            "-o wal_recovery takes " + WALRecovery.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    options.walRecovery = m
                case "snapdir":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, ["hidden", "visible"].contains(parts[1]) else {
                        throw CLIError("-o snapdir takes hidden or visible")
                    }
                    listSnapshots = parts[1] == "visible"
                case "compaction":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let style = CompactionStyle(rawValue: parts[1]) else {
                        throw CLIError("-o compaction takes leveled or universal")
                    }
                    options.compaction.style = style
                case "compression":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let c = Compression(rawValue: parts[1]) else {
                        throw CLIError("-o compression takes none, lz4 or zstd")
                    }
                    options.setCompression(c)
                case "ro":
                    // Read-only all the way down: the store writes nothing either.
                    options.readOnly = true
                    fuseOptions.append(opt)
                case "writeback":
                    storeOptions.append(parts[0])
                    writeBack = true
                case "blob_kb":
                    storeOptions.append(parts[0])
                    guard parts.count == 2, let n = Int(parts[1]), n >= 1 else {
                        throw CLIError("-o blob_kb takes a number")
                    }
                    options.blobThreshold = n << 10
                case "defaults", "auto", "noauto", "user", "nouser", "users", "_netdev", "nofail", "rw":
                    continue
                default:
                    if parts[0].hasPrefix("x-") || parts[0].hasPrefix("comment=") { continue }
                    fuseOptions.append(opt)
                }
            }
            // The kernel checks modes and owners (default_permissions) whenever anyone but root
            // can reach the mount. On a root mount without allow_other/allow_root only uid 0
            // can, and it passes every check but executing a file without an x bit, which the
            // kernel still refuses (and `access` answers): leaving the option out there saves a
            // GETATTR round trip for the parent directory after each create, unlink and rename.
            let othersCanReach =
                geteuid() != 0 || fuseOptions.contains { $0 == "allow_other" || $0 == "allow_root" }
            if othersCanReach && !fuseOptions.contains("default_permissions") {
                fuseOptions.append("default_permissions")
            }
            if etcd != nil, let first = storeOptions.first {
                throw CLIError("-o \(first) is an option of an embedded store; an etcd mount has none of them")
            }
            try MountLayers.clearDead(at: mnt)
            var st = stat()
            guard stat(mnt, &st) == 0 else { throw CLIError("mount point \(mnt): \(String(cString: strerror(errno)))") }
            guard st.st_mode & S_IFMT == S_IFDIR else { throw CLIError("mount point \(mnt) is not a directory") }
            if let etcd, foreground || readyFD != nil {
                try serveShared(etcd, mountpoint: mnt, fuseOptions: fuseOptions)
            } else if let etcd {
                try daemonize(log: Mount.sharedLogPath(etcd, mountpoint: mnt))
            } else if foreground || readyFD != nil {
                try serve(
                    dir: dir, mountpoint: mnt, options: options, fuseOptions: fuseOptions, writeBack: writeBack,
                    listSnapshots: listSnapshots)
            } else {
                try StoreDirectory.create(dir)
                try daemonize(log: "\(dir)/mount.log")
            }
        }
    }

    /// Tells the waiting `slice mount` (through `--ready-fd`) that the mount is ready or why not.
    private func report(_ line: String) {
        guard let fd = readyFD else { return }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }

    /// Where the daemon of a mount on etcd logs (it has no data directory).
    static func sharedLogPath(_ target: EtcdTarget, mountpoint: String) -> String {
        "/tmp/slice-mount\(mountpoint.replacingOccurrences(of: "/", with: "_")).log"
    }

    /// Serves a tree in an etcd cluster until unmounted.
    private func serveShared(_ target: EtcdTarget, mountpoint: String, fuseOptions: [String]) throws {
        let fs: SliceFileSystem
        do {
            fs = try SliceFileSystem.onEtcd(target)
        } catch {
            report("error: etcd cluster \(target.endpoints.joined(separator: ",")): \(error)\n")
            throw CLIError("etcd cluster \(target.endpoints.joined(separator: ",")): \(error)")
        }
        defer { fs.closeSharedStore() }
        do {
            try FuseSession.serve(fs, at: mountpoint, options: fuseOptions) {
                report("ok\n")
                Terminal.error("mounted \(directory) at \(mountpoint)")
            }
        } catch {
            report("error: \(error)\n")
            throw error
        }
        Terminal.error("unmounted \(mountpoint)")
    }

    private func serve(
        dir: String, mountpoint: String, options: Options, fuseOptions: [String], writeBack: Bool,
        listSnapshots: Bool
    ) throws {
        let db: SliceDB
        do {
            db = try SliceDB(path: dir, options: options)
        } catch let e as SliceError where e.code == .locked {
            report("error: the store at \(dir) is in use by another process\n")
            throw CLIError("the store at \(dir) is in use by another process")
        } catch {
            report("error: \(error)\n")
            throw error
        }
        for note in db.recoveryNotes { Terminal.error("recovery: \(note)") }
        do {
            let fs = MountRouter(
                live: try SliceFileSystem(db: db, writeBack: writeBack), db: db, listSnapshots: listSnapshots)
            try FuseSession.serve(fs, at: mountpoint, options: fuseOptions) {
                report("ok\n")
                Terminal.error("mounted \(dir) at \(mountpoint)")
            }
        } catch {
            report("error: \(error)\n")
            try? db.close()
            throw error
        }
        try db.close()
        Terminal.error("unmounted \(mountpoint); store closed")
    }

    /// Starts `slice mount --ready-fd` in a new session and waits until it says the mount is
    /// ready (or why it is not).
    private func daemonize(log: String) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw CLIError("pipe: \(String(cString: strerror(errno)))") }
        let self_ =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var args = [self_, "mount", directory, mountpoint, "--ready-fd", "3"]
        for opt in o { args += ["-o", opt] }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Order matters: the pipe's read end may itself be descriptor 3.
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_adddup2(&actions, fds[1], 3)
        if fds[1] != 3 { posix_spawn_file_actions_addclose(&actions, fds[1]) }
        // Nothing else is inherited: a caller waiting for our output to end (a pipe) must not
        // wait for the daemon too.
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 3, fd != fds[0], fd != fds[1] {
                posix_spawn_file_actions_addclose(&actions, fd)
            }
        }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, 0x80)  // POSIX_SPAWN_SETSID (glibc), not exported to Swift
        var cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, self_, &actions, &attr, &cargs, environ)
        close(fds[1])
        guard rc == 0 else { throw CLIError("cannot start the mount process: \(String(cString: strerror(rc)))") }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 512)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fds[0], $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            reply.append(contentsOf: buf[0..<n])
            if reply.contains(0x0a) { break }
        }
        close(fds[0])
        let text = String(decoding: reply, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard text == "ok" else {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw CLIError(
                text.isEmpty
                    ? "the mount process exited early; see \(log)" : String(text.dropFirst("error: ".count)))
        }
    }
}

struct Umount: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "umount",
        abstract: "Unmount a Slice mount and wait until its store is flushed and closed.")

    @Argument var mountpoint: String
    @Option(help: "Seconds to wait for the store to close.") var timeout: Double = 60

    func run() throws {
        try runReporting {
            let mnt = canonicalMountPoint(mountpoint)
            guard !MountTable().fuseLayers(at: mnt).isEmpty else { throw CLIError("\(mnt) is not a Slice mount") }
            // Every stacked mount goes, dead ones too: otherwise the one below reappears.
            let closing = try MountLayers.unmountAll(at: mnt)
            // The daemons flush and close after the kernel lets go: wait for their LOCKs.
            for dir in closing where !MountLayers.waitUntilClosed(dir, timeout: timeout) {
                throw CLIError("unmounted, but the store at \(dir) was still busy after \(Int(timeout)) s")
            }
        }
    }
}

@discardableResult
func runTool(_ path: String, _ args: [String]) -> Int32 {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardOutput = FileHandle.nullDevice
    do { try p.run() } catch { return -1 }
    p.waitUntilExit()
    return p.terminationStatus
}

func absolute(_ path: String) -> String {
    let url =
        path.hasPrefix("/")
        ? URL(fileURLWithPath: path)
        : URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(path)
    return url.standardizedFileURL.path
}
