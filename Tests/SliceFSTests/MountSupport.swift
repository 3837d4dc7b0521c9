import Foundation
import Testing

@testable import SliceFS
@testable import SliceKV

/// A store mounted through the real kernel by the `slice` binary, in fresh temp directories.
final class MountedStore: @unchecked Sendable {
    let root: String
    let data: String
    let mnt: String
    /// What is mounted: `data`, or a tree in an etcd cluster (`etcd://…`).
    let source: String
    private(set) var mounted = false

    init(options: [String] = [], source: String? = nil) throws {
        var template = Array("/tmp/slicefs-XXXXXX".utf8CString)
        root = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
        data = root + "/data"
        mnt = root + "/mnt"
        self.source = source ?? data
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try mount(options: options)
    }

    func mount(options: [String] = []) throws {
        var args = ["mount", source, mnt]
        for o in options { args += ["-o", o] }
        let r = try run(sliceExecutable, args)
        guard r.status == 0 else { throw TestFailure("mount failed: \(r.err)") }
        mounted = true
    }

    func unmount() throws {
        guard mounted else { return }
        let r = try run(sliceExecutable, ["umount", mnt])
        guard r.status == 0 else { throw TestFailure("umount failed: \(r.err)") }
        mounted = false
    }

    func path(_ p: String) -> String { mnt + "/" + p }

    /// The process serving the mount (`slice mount ... DATA MNT`), found in /proc.
    func daemonPID() -> pid_t? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = pid_t(entry), let raw = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
            else {
                continue
            }
            let args = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            if args.count > 2 && args[0].hasSuffix("slice") && args[1] == "mount" && args.contains(source)
                && args.contains(mnt)
            {
                return pid
            }
        }
        return nil
    }

    deinit {
        if mounted {
            _ = try? run(sliceExecutable, ["umount", mnt])
            _ = try? run("/bin/fusermount3", ["-u", "-z", mnt])
        }
        try? FileManager.default.removeItem(atPath: root)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

var sliceExecutable: String {
    let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: me).deletingLastPathComponent()
    while !FileManager.default.fileExists(atPath: dir.appendingPathComponent("slice").path) && dir.path != "/" {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("slice").path
}

@discardableResult
func run(_ executable: String, _ args: [String], stdin: [UInt8]? = nil, environment: [String: String] = [:]) throws
    -> (status: Int32, out: String, err: String)
{
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = args
    if !environment.isEmpty {
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let out = Pipe()
    let err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

/// Runs a shell command line, returning its status and output.
@discardableResult
func sh(_ command: String) throws -> (status: Int32, out: String, err: String) {
    try run("/bin/bash", ["-c", command])
}

func readFile(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

func writeFile(_ path: String, _ bytes: [UInt8]) -> Int32 {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd < 0 { return errno }
    defer { close(fd) }
    let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    return n == bytes.count ? 0 : errno
}

/// errno of a failing call, 0 on success.
func errnoOf(_ result: Int32) -> Int32 { result < 0 ? errno : 0 }

struct SeededRandom: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// How many mounts (of any kind) the kernel's table has at exactly `mountpoint`.
func mountCount(at mountpoint: String) -> Int {
    let info = (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
    return info.split(separator: "\n").filter { $0.split(separator: " ").dropFirst(4).first == Substring(mountpoint) }
        .count
}

/// The process holding a store's LOCK (for a mounted store: its daemon), from /proc/locks.
func lockHolder(of dataDir: String) -> pid_t? {
    var st = stat()
    guard stat(dataDir + "/LOCK", &st) == 0,
        let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8)
    else { return nil }
    for line in locks.split(separator: "\n") {
        // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:5678 0 EOF"
        let f = line.split(separator: " ")
        guard f.count > 5, f[1] == "FLOCK", f[5].split(separator: ":").last == Substring("\(st.st_ino)") else {
            continue
        }
        return pid_t(f[4])
    }
    return nil
}

/// Waits until a killed process is gone or a zombie (it holds no file then). False on timeout.
@discardableResult
func waitUntilGone(_ pid: pid_t, seconds: Double = 10) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return true }
        if stat.split(separator: ")").last?.split(separator: " ").first == "Z" { return true }
        usleep(5_000)
    }
    return false
}

/// Mounts a FUSE filesystem at `mountpoint` whose daemon is already gone: the connection's
/// only descriptor is closed right after mount(2), as when a daemon is SIGKILLed.
func stackDeadFuseMount(at mountpoint: String, source: String = "dead") throws {
    let fd = open("/dev/fuse", O_RDWR | O_CLOEXEC)
    guard fd >= 0 else { throw TestFailure("open /dev/fuse: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    let options = "fd=\(fd),rootmode=40000,user_id=\(getuid()),group_id=\(getgid())"
    let rc = options.withCString { Glibc.mount(source, mountpoint, "fuse.slice", 0, $0) }
    guard rc == 0 else { throw TestFailure("mount(2) of a dead FUSE mount: \(String(cString: strerror(errno)))") }
}

/// A small tmpfs to fill up (full-disk tests), mounted at `ROOT/small` and lazily unmounted
/// when this goes away.
final class SmallDisk {
    let path: String

    init(under root: String, mib: Int) throws {
        path = root + "/small"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let r = try sh("mount -t tmpfs -o size=\(mib)m tmpfs '\(path)'")
        guard r.status == 0 else { throw TestFailure("tmpfs mount failed: \(r.err)") }
    }

    deinit { _ = try? sh("umount -l '\(path)'") }
}

/// Moves `m`'s mount onto a new store on a `SmallDisk` of `mib` MiB (after `filler` bytes of
/// another file there), with 4 MiB memtables so flushes come often. Returns the disk (keep it
/// alive until the store is unmounted) and the store's path.
func mountOnSmallDisk(_ m: MountedStore, mib: Int, filler: Int = 0) throws -> (SmallDisk, String) {
    try m.unmount()
    let disk = try SmallDisk(under: m.root, mib: mib)
    if filler > 0 {
        guard try sh("head -c \(filler) /dev/zero > '\(disk.path)/filler'").status == 0 else {
            throw TestFailure("could not write the filler")
        }
    }
    let store = disk.path + "/store"
    let r = try run(sliceExecutable, ["mount", store, m.mnt, "-o", "memtable_mb=4"])
    guard r.status == 0 else { throw TestFailure("mount on the small disk failed: \(r.err)") }
    return (disk, store)
}
